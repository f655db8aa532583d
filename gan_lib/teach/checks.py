"""Auto-checks for the lesson exercises: call one on your answer; it prints "✓ ..." or says what is wrong.

    check_discriminator_loss(discriminator_loss)     # lesson 02 (or a GANLoss: check_discriminator_loss(MyLoss()))
    check_generator_loss(generator_loss)             # lesson 02
    check_generator_shapes(lambda: make_generator(), 100, (3, 96, 96))      # lesson 03 (or a built G)
    check_gradient_penalty(my_gradient_penalty)      # lesson 04
    check_r1(my_r1)                                  # lesson 05

Each check compares your function with gan_lib's own implementation on small fixed inputs. A failure raises
AssertionError with one sentence: what came out, what was expected, and a hint; common slips (BCE on logits,
eps of the wrong shape, a missing ``return``, noise of the wrong shape) get their own sentence instead of
PyTorch's error. An answer not written yet (it raises NotImplementedError, as in a student version) prints
one line and raises nothing, so that "Run all" goes on with the rest of the lesson.
"""
from __future__ import annotations

import copy
import functools
import inspect

import torch
from torch import nn

from gan_lib.losses import GANLoss, NonSaturatingLoss, gradient_penalty, input_gradient
from gan_lib.models import gaussian_noise

# Fixed logits of D on 4 real and 4 fake samples, (4, 1) each: confident, unsure and wrong answers.
REAL_LOGITS = torch.tensor([[2.0], [0.5], [-1.0], [3.5]])
FAKE_LOGITS = torch.tensor([[-2.5], [0.3], [1.2], [-0.4]])


def _identity(logits):
    return logits


# (words in PyTorch's error, the sentence a student gets instead); {what} is the function checked.
SLIPS = [("between 0 and 1", "{what} passed logits to F.binary_cross_entropy, which wants probabilities: use "
                             "F.binary_cross_entropy_with_logits (D returns logits), as section 3 does"),
         ("must match the size", "{what} multiplies tensors whose shapes do not broadcast ({error}): eps needs one "
                                 "number per sample with the image's number of dimensions, torch.rand(B, 1, 1, 1), "
                                 "not torch.rand(B, 1)"),
         ("expected input", "{what} got input of a shape it does not take ({error}): check the shape each layer "
                            "expects"),
         ("does not require grad", "{what} differentiates with respect to an input that does not require a gradient "
                                   "({error}): make it a leaf that does, x = real.detach().requires_grad_(True), and "
                                   "differentiate D(x) with respect to x")]


def exercise_check(check):
    """Wrap a check: NotImplementedError (an exercise not written yet) prints one line instead of stopping "Run
    all", and a raw PyTorch error from the student's code becomes one AssertionError sentence."""
    @functools.wraps(check)
    def wrapper(answer, *args, **kwargs):
        what = getattr(answer, "__name__", type(answer).__name__)
        try:
            return check(answer, *args, **kwargs)
        except NotImplementedError:
            print(f"… {what} is not written yet (it raises NotImplementedError): write it in its cell, run that "
                  f"cell, then run this check again.")
        except (RuntimeError, ValueError, TypeError, IndexError) as error:
            first = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
            sentence = next((hint for words, hint in SLIPS if words in str(error)),
                            "{what} raised " + type(error).__name__ + " ({error}): fix that line, then run this "
                            "check again")
            raise AssertionError(sentence.format(what=what, error=first) + ".") from None
    return wrapper


def _call(fn, what: str, *args):
    """``fn(*args)``, with a sentence when it returns None (a missing ``return``)."""
    value = fn(*args)
    assert value is not None, f"{what} returned None: it computes its result but lacks `return` (add `return ...`)."
    return value


def _scalar(value, what: str, grad_hint: str = "compute it from the logits with torch operations") -> torch.Tensor:
    """``value`` detached, after checking that it is a 0-d tensor with a gradient path to the inputs."""
    described = f"a tensor of shape {tuple(value.shape)}" if torch.is_tensor(value) else type(value).__name__
    assert torch.is_tensor(value) and value.dim() == 0, \
        f"{what} returned {described}, not a 0-d tensor: average over the batch and return the tensor itself."
    assert value.requires_grad, \
        f"{what} has no gradient path: {grad_hint}, and return the tensor, not .item() or a detached copy."
    return value.detach()


def _assert_close(got: torch.Tensor, want: torch.Tensor, message: str) -> None:
    """AssertionError with ``message`` (which may use {got} and {want}) unless the two agree to ~1e-4."""
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-6), message.format(got=got.item(), want=want.item())


def _loss_hook(answer, hook: str):
    """The function to check when ``answer`` is written as ``train`` calls a loss: a ``GANLoss`` (its ``hook``), a
    method of one, or a function whose first argument is ``D``; None for a function of D's logits (lesson 02)."""
    if isinstance(answer, GANLoss):
        return getattr(answer, hook)
    try:
        first = next(iter(inspect.signature(answer).parameters), None)
    except (TypeError, ValueError):                            # not a Python function: the logits path says why
        return None
    return answer if isinstance(getattr(answer, "__self__", None), GANLoss) or first == "D" else None


def _loss_of(value):
    """The loss of what a GANLoss hook returned: ``(loss, stats)``, or the loss alone."""
    return value[0] if isinstance(value, tuple) else value


def _check_discriminator_hook(hook, real_label: float) -> None:
    """``hook(D, real, fake, scale)`` -> (loss, stats) as ``NonSaturatingLoss(real_label)``; ``scale`` (the fp16
    GradScaler's, which ``train`` passes) is only for a penalty's input gradient, so a BCE loss ignores it."""
    try:
        inspect.signature(hook).bind(_identity, REAL_LOGITS, FAKE_LOGITS, 1.0)
    except TypeError:
        raise AssertionError("discriminator_loss takes no `scale`: train() calls it as discriminator_loss(D, real, "
                             "fake, scale) with the fp16 GradScaler's scale, so add `scale=1.0` to its arguments, as "
                             "GANLoss.discriminator_loss has.") from None
    real, fake = REAL_LOGITS.clone().requires_grad_(True), FAKE_LOGITS.clone().requires_grad_(True)   # (4, 1) each
    got = _scalar(_loss_of(_call(hook, "discriminator_loss", _identity, real, fake, 1.0)), "discriminator_loss")
    want = NonSaturatingLoss(real_label).discriminator_loss(_identity, REAL_LOGITS, FAKE_LOGITS)[0]
    _assert_close(got, want, f"With real_label={real_label} the loss is {{got:.5f}}, expected {{want:.5f}}: add "
                             f"BCE(D(real), target real_label) and BCE(D(fake), target 0), each a mean over the batch, "
                             f"with F.binary_cross_entropy_with_logits.")
    scaled = _loss_of(hook(_identity, REAL_LOGITS, FAKE_LOGITS, 8.0)).detach()
    _assert_close(scaled, got, "With scale=8.0 the loss is {got:.5f} instead of {want:.5f}: train() scales the loss "
                               "itself, and `scale` is only for taking a penalty's input gradient, so leave it out "
                               "of a BCE loss.")
    print(f"✓ discriminator_loss(D, real, fake, scale) matches gan_lib's BCE loss for real_label {real_label}")


@exercise_check
def check_discriminator_loss(fn) -> None:
    """``fn(d_real_logits, d_fake_logits, real_label)`` -> D's BCE loss (a scalar), as ``NonSaturatingLoss``.

    A loss written as ``train`` calls it (a ``GANLoss``, or ``discriminator_loss(D, real, fake, scale=1.0)``
    returning the loss or ``(loss, stats)``) is checked at its own ``real_label`` (1.0 when it has none)."""
    hook = _loss_hook(fn, "discriminator_loss")
    if hook is not None:
        owner = fn if isinstance(fn, GANLoss) else getattr(fn, "__self__", None)
        return _check_discriminator_hook(hook, getattr(owner, "real_label", 1.0))
    for real_label in (1.0, 0.9):
        real = REAL_LOGITS.clone().requires_grad_(True)            # (4, 1)
        fake = FAKE_LOGITS.clone().requires_grad_(True)            # (4, 1)
        got = _scalar(_call(fn, "discriminator_loss", real, fake, real_label), "discriminator_loss")
        want = NonSaturatingLoss(real_label).discriminator_loss(_identity, REAL_LOGITS, FAKE_LOGITS)[0]
        hint = ("add BCE(real logits, target 1) and BCE(fake logits, target 0), each a mean over the batch, "
                "with F.binary_cross_entropy_with_logits (the inputs are logits, not probabilities)"
                if real_label == 1.0 else
                "smooth only the real targets, torch.full_like(d_real_logits, real_label), and keep the fake targets 0")
        _assert_close(got, want, f"With real_label={real_label} the loss is {{got:.5f}}, expected {{want:.5f}}: {hint}.")
    print("✓ discriminator_loss matches gan_lib's BCE loss for real_label 1.0 and 0.9")


@exercise_check
def check_generator_loss(fn) -> None:
    """``fn(d_fake_logits)`` -> G's non-saturating loss (a scalar), as ``NonSaturatingLoss.generator_loss``; or,
    as ``train`` calls it, a ``GANLoss`` or ``generator_loss(D, fake)`` returning the loss or ``(loss, stats)``."""
    hook, fake = _loss_hook(fn, "generator_loss"), FAKE_LOGITS.clone().requires_grad_(True)
    args = (fake,) if hook is None else (_identity, fake)
    got = _scalar(_loss_of(_call(hook or fn, "generator_loss", *args)), "generator_loss")
    want = NonSaturatingLoss().generator_loss(_identity, FAKE_LOGITS)[0]
    _assert_close(got, want, "The generator loss is {got:.5f}, expected {want:.5f}: use the non-saturating loss "
                             "BCE(fake logits, target 1) = -mean(log D(G(z))), not log(1 - D(G(z))), averaged over the batch.")
    print("✓ generator_loss matches gan_lib's non-saturating loss")


def _generator_input(G: nn.Module, z: torch.Tensor):
    """G(z); when G refuses z's shape but takes the other layout ((B, d) vs (B, d, 1, 1)), one sentence says so."""
    try:
        return G(z)
    except (RuntimeError, ValueError) as error:
        other = z.flatten(1) if z.dim() == 4 else z[:, :, None, None]
        try:
            G(other)
        except (RuntimeError, ValueError):
            raise error from None
        raise AssertionError(f"G takes noise of shape {tuple(other.shape)} but the lesson gives it "
                             f"{tuple(z.shape)}: " + ("start G with nn.Flatten(), or reshape z with z.flatten(1)" if z.dim() == 4
                                                    else "add nn.Unflatten(1, (latent_dim, 1, 1)) as G's first layer "
                                                    "(DCGAN's z is a 1x1 image with latent_dim channels)") + ".") from None


@exercise_check
@torch.no_grad()
def check_generator_shapes(G: nn.Module, latent_dim: int, image_shape: tuple[int, ...], noise=gaussian_noise) -> None:
    """G (a module, or a function without arguments that builds one, so that an unwritten exercise is caught here)
    maps noise(B, latent_dim) to shape (B, *image_shape) for B = 1 and 5, with values in [-1, 1] that depend on z,
    and G ends in tanh: with its last layer's weights scaled up, its outputs still stay in [-1, 1] and go below 0.

    G runs in eval mode (batch norm uses its running statistics, so B = 1 works) and gets its mode back after.
    """
    if callable(G) and not isinstance(G, nn.Module):    # a builder, e.g. lambda: make_generator(...)
        G = G()
    assert isinstance(G, nn.Module), (f"the generator is {type(G).__name__}, not an nn.Module: does the function "
                                      f"that builds it lack `return` (e.g. `return nn.Sequential(...)`)?")
    training, device = G.training, next(G.parameters(), torch.empty(0)).device
    G.eval()
    try:
        for n in (1, 5):
            x = _generator_input(G, noise(n, latent_dim).to(device))
            want = (n, *image_shape)
            assert tuple(x.shape) == want, (
                f"G(z) for {n} noise vector(s) has shape {tuple(x.shape)}, expected {want}: check each layer's "
                f"output size, (in - 1) * stride - 2 * padding + kernel for a ConvTranspose2d.")
            assert x.min() >= -1 and x.max() <= 1, (
                f"G's outputs span [{x.min():.3g}, {x.max():.3g}], outside [-1, 1]: end the generator with nn.Tanh() "
                f"so that it matches the range of the real images.")
        assert not torch.allclose(x[0], x[1:]), "G gives the same image for different z: make every layer depend on its input."
        loud = copy.deepcopy(G)                                 # the last layer with weights, 1000x louder
        last = [m for m in loud.modules() if getattr(m, "weight", None) is not None][-1]
        for param in last.parameters(recurse=False):
            param.mul_(1000)
        y = loud(noise(5, latent_dim).to(device))
        assert y.min() >= -1 and y.max() <= 1, (
            f"G's output is not bounded: with its last layer's weights scaled up it reaches {y.abs().max():.3g}, so it "
            f"ends without tanh; end the generator with nn.Tanh() (real images are scaled to [-1, 1]).")
        assert y.min() < 0, ("G's outputs never go below 0 even with its last layer's weights scaled up, so it ends "
                             "in a sigmoid (range [0, 1]) while real images are scaled to [-1, 1]: end it with nn.Tanh().")
    finally:
        G.train(training)
    print(f"✓ G maps noise (B, {latent_dim}) to images (B, {', '.join(map(str, image_shape))}) in [-1, 1] for B = 1 and 5")


def _linear_critic(weight: torch.Tensor) -> nn.Module:
    """f(x) = weight . x + b on (B, 3, 4, 4) images: its gradient is ``weight`` (48,) everywhere."""
    D = nn.Sequential(nn.Flatten(), nn.Linear(48, 1))
    with torch.no_grad():
        D[1].weight.copy_(weight.view(1, 48))
    return D


@exercise_check
def check_gradient_penalty(fn) -> None:
    """``fn(D, real, fake)`` -> mean_i (||grad D(x̂_i)||_2 - 1)^2, the WGAN-GP penalty before its weight λ.

    First on linear critics, whose gradient norm is known (penalty (norm - 1)^2 whatever eps is), then on a
    small nonlinear critic against ``gan_lib.losses.gradient_penalty`` with the same eps (torch's next draw).
    """
    with torch.random.fork_rng(devices=[]):                    # leaves the notebook's random stream alone
        torch.manual_seed(0)
        real, fake = torch.rand(2, 6, 3, 4, 4) * 2 - 1         # (6, 3, 4, 4) each, in [-1, 1]
        direction = torch.randn(48)
        for norm in (3.0, 0.5):
            critic = _linear_critic(direction / direction.norm() * norm)
            got = _scalar(_call(fn, "The gradient penalty", critic, real, fake), "The gradient penalty",
                          grad_hint="pass create_graph=True to torch.autograd.grad so that the penalty trains the critic")
            _assert_close(got, torch.tensor((norm - 1) ** 2), (
                f"On a linear critic with gradient 2-norm {norm} the penalty is {{got:.5f}}, expected "
                f"({norm} - 1)^2 = {{want:.5f}}: take each sample's 2-norm over all its pixels, "
                f"grad.flatten(1).norm(2, dim=1), subtract 1, square, then average over the batch."))
        D = nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.Tanh(), nn.Linear(16, 1))
        with torch.no_grad():
            D[1].weight.mul_(4)                                # tanh well into its curve: the gradient varies with x
        torch.manual_seed(1)
        got = _scalar(_call(fn, "The gradient penalty", D, real, fake), "The gradient penalty")
        torch.manual_seed(1)
        eps = torch.rand(6, 1, 1, 1)                           # the draw fn made first, if it follows the recipe
        want = gradient_penalty(D, real, fake, eps=eps)[0].detach()
        _assert_close(got, want, "On a small nonlinear critic the penalty is {got:.5f}, expected {want:.5f}: draw one "
                                 "eps per sample, torch.rand(B, 1, 1, 1), before any other random call, and take the "
                                 "gradient at x_hat = eps * real + (1 - eps) * fake.")
    print("✓ the gradient penalty matches (norm - 1)^2 on linear critics and gan_lib's on a nonlinear one")


@exercise_check
def check_r1(fn) -> None:
    """``fn(D, real)`` -> mean_i ||grad_x D(x_i)||_2^2, R1 before its weight γ/2, differentiable in D's weights only.

    On a linear D, whose input gradient is its weight vector, with real images that carry no gradient (a batch
    of data); then on a small convolutional D against ``gan_lib.losses.input_gradient``, with images computed
    from a tensor that requires a gradient (as G's output is, for R2): the penalty must not reach that tensor."""
    with torch.random.fork_rng(devices=[]):                    # leaves the notebook's random stream alone
        torch.manual_seed(0)
        linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 1))
        conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 6, 1))
        x = torch.randn(5, 3, 8, 8)                             # (5, 3, 8, 8)
        upstream = x.clone().requires_grad_(True)               # stands for G's weights
        cases = [("a linear D", linear, x.clone(), linear[1].weight.detach().square().sum()),
                 ("a convolutional D", conv, upstream * 1.0, input_gradient(conv, x).flatten(1).square().sum(1).mean())]
        for name, D, real, want in cases:
            value = _call(fn, "The R1 penalty", D, real)
            got = _scalar(value, "The R1 penalty",
                          grad_hint="pass create_graph=True to torch.autograd.grad so that the penalty trains D")
            _assert_close(got, want.detach(), f"On {name} the penalty is {{got:.5f}}, expected {{want:.5f}}: square "
                                              f"the gradient, sum it over each image's pixels, then average over the "
                                              f"batch.")
        leak, = torch.autograd.grad(value, upstream, allow_unused=True)
        assert leak is None, ("The R1 penalty reaches whatever made the images (G, for generated ones): differentiate a "
                              "detached copy, x = real.detach().requires_grad_(True), so that it trains D only.")
    print(f"✓ {getattr(fn, '__name__', 'the R1 penalty')} matches gan_lib's R1 on a linear and a convolutional D")
