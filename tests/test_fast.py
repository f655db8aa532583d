"""The fast path (uint8 images on the device, precision, compile): ImageBatches' order and state, precision
choice, and fast against plain training on the CPU."""
import pytest
import torch
from torch.utils.data import DataLoader

from gan_lib.data import FaceTensor, ImageBatches, infinite
from gan_lib.losses import NonSaturatingLoss, WassersteinGPLoss, gradient_penalty
from gan_lib.models import dcgan, gaussian_noise
from gan_lib.recipes import adam
from gan_lib.runtime import choose_precision
from gan_lib.train import Options, train


def _pixels(n=40, size=8, seed=0):
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_each_epoch_is_a_permutation_and_the_partial_last_batch_is_skipped():
    images = torch.arange(10, dtype=torch.float32).view(10, 1)            # float images pass through unchanged
    batches = ImageBatches(images, batch_size=4, seed=3)
    assert len(batches) == 2
    epoch1 = torch.cat([next(batches) for _ in range(2)]).flatten()
    epoch2 = torch.cat([next(batches) for _ in range(2)]).flatten()
    assert len(set(epoch1.tolist())) == 8 and len(set(epoch2.tolist())) == 8
    assert not torch.equal(epoch1, epoch2)                                 # a new order each epoch
    again = ImageBatches(images, batch_size=4, seed=3)
    assert torch.equal(torch.cat([next(again) for _ in range(2)]).flatten(), epoch1)   # same seed, same order


def test_batches_equal_the_dataloader_over_the_same_images_in_the_same_order():
    pixels = _pixels()
    batches = ImageBatches(pixels, batch_size=8, seed=1)
    order = torch.randperm(40, generator=torch.Generator().manual_seed(1 * 1_000_003 + 0))
    loader = DataLoader(FaceTensor(pixels, "test"), batch_size=8, sampler=order.tolist())
    for expected in loader:
        assert torch.equal(next(batches), expected)                          # bit for bit: [-1, 1] the same way


def test_flips_mirror_about_half_and_repeat_with_the_seed():
    pixels = _pixels(n=200)
    plain, flipped = ImageBatches(pixels, 200, seed=2), ImageBatches(pixels, 200, seed=2, flip=True)
    a, b = next(plain), next(flipped)
    mirrored = [torch.equal(x.flip(-1), y) and not torch.equal(x, y) for x, y in zip(a, b)]
    same = [torch.equal(x, y) for x, y in zip(a, b)]
    assert all(m or s for m, s in zip(mirrored, same)) and 70 < sum(mirrored) < 130
    assert torch.equal(next(ImageBatches(pixels, 200, seed=2, flip=True)), b)


def test_state_dict_resumes_mid_epoch_exactly():
    pixels = _pixels()
    straight = ImageBatches(pixels, batch_size=6, seed=4, flip=True)
    first = [next(straight) for _ in range(9)]                             # crosses an epoch boundary (6 per epoch)
    stopped = ImageBatches(pixels, batch_size=6, seed=4, flip=True)
    for _ in range(4):
        next(stopped)
    resumed = ImageBatches(pixels, batch_size=6, seed=99, flip=True)
    resumed.load_state_dict(stopped.state_dict())
    assert all(torch.equal(next(resumed), expected) for expected in first[4:])


@pytest.mark.parametrize("n, batch", [(0, 4), (3, 4), (5, 0)])
def test_impossible_sizes_are_one_clear_error(n, batch):
    with pytest.raises(ValueError, match="batch_size between 1 and the number of images"):
        ImageBatches(_pixels(n=max(n, 1))[:n], batch_size=batch)


@pytest.mark.filterwarnings("ignore:bf16 ran")     # a CPU without AVX512-BF16 warns (tested below)
def test_precision_choice(monkeypatch):
    assert choose_precision("cpu") == "fp32" and choose_precision("cpu", "bf16") == "bf16"
    with pytest.raises(ValueError, match="choose 'auto'"):
        choose_precision("cpu", "fp8")
    for capability, expected in [((7, 5), "fp16"), ((8, 0), "fp32"), ((9, 0), "fp32")]:   # T4, A100, H100
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        assert choose_precision("cuda") == expected
    assert adam([torch.nn.Parameter(torch.zeros(2))], "cpu").defaults["fused"] is False


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_without_native_bf16_warns_that_it_is_slower(monkeypatch, recwarn, native):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    assert choose_precision("cpu", "bf16") == "bf16"          # still what was asked for: a warning, not a refusal
    said = [str(w.message) for w in recwarn if "15x slower" in str(w.message)]
    assert (said == []) if native else (len(said) == 1 and "use fp32" in said[0])
    choose_precision("cpu", "fp32")
    assert len([w for w in recwarn if "15x slower" in str(w.message)]) == len(said)   # fp32 says nothing


def _train(precision="fp32", channels_last=False, loss=None, steps=3, compile=False, d_norm="batch"):
    torch.manual_seed(0)
    G, D = dcgan(64, g_width=4, d_width=4, d_norm=d_norm)
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, (0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, (0.5, 0.999))
    pixels = _pixels(n=32, size=64)
    if channels_last:        # the fast path's batches
        batches = ImageBatches(pixels, 8, seed=0, channels_last=True)
    else:                    # the plain path: a DataLoader over the same images in the same order
        order = torch.randperm(32, generator=torch.Generator().manual_seed(0))
        batches = infinite(DataLoader(FaceTensor(pixels, "test"), batch_size=8, sampler=order.tolist()))
    gen = torch.Generator().manual_seed(1)   # its own stream: iterating a DataLoader draws from torch's global one
    run = train(G, D, opt_g, opt_d, batches, loss or NonSaturatingLoss(), lambda n: gaussian_noise(n, 100, gen),
                steps, options=Options(precision=precision, compile=compile, progress=False))
    return G, D, run


@pytest.mark.filterwarnings("ignore:bf16 ran")     # a CPU without AVX512-BF16 warns (tested above)
def test_fast_path_matches_the_plain_path_on_the_cpu():
    G1, D1, r1 = _train()
    G2, D2, r2 = _train(channels_last=True)
    h1, h2 = r1.history, r2.history
    for a, b in zip([*G1.state_dict().values(), *D1.state_dict().values()],
                    [*G2.state_dict().values(), *D2.state_dict().values()]):
        assert torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-5)
    assert h1["loss_d"] == pytest.approx(h2["loss_d"], rel=1e-4)
    h3 = _train(precision="bf16", channels_last=True)[2].history           # bf16: the same run, to ~1%
    assert h3["loss_d"] == pytest.approx(h1["loss_d"], rel=0.03)
    assert h3["loss_g"] == pytest.approx(h1["loss_g"], rel=0.03)


class ScaleSeen(WassersteinGPLoss):
    """WGAN-GP that records the ``scale`` the loop passes to its penalty."""

    def __init__(self):
        super().__init__()
        self.scales = []

    def discriminator_loss(self, D, real, fake, scale=1.0):
        self.scales.append(scale)
        return super().discriminator_loss(D, real, fake, scale)


def test_fp16_scales_the_gradient_penalty_and_stays_finite():
    loss = ScaleSeen()
    G, D, run = _train(precision="fp16", loss=loss, steps=2, d_norm="layer")
    assert loss.scales and min(loss.scales) > 1                            # the GradScaler's scale reached the penalty
    assert loss.scales[0] == 65536.0 and run.scaler["scale"] <= 65536.0   # and the run keeps the scaler's state
    assert all(torch.isfinite(p).all() for p in [*G.parameters(), *D.parameters()])
    recorded = len(run.history["loss_d"])
    assert recorded + run.fp16_skipped == 2                                # skipped updates are counted
    assert all(torch.isfinite(torch.tensor(run.history[k])).all() for k in ("loss_d", "gradient penalty"))
    fp32 = ScaleSeen()
    assert _train(loss=fp32, steps=1)[2].scaler == {} and fp32.scales == [1.0]   # fp32: no scaler, scale 1


def test_a_scaled_gradient_penalty_equals_the_unscaled_one():
    torch.manual_seed(0)
    D = dcgan(64, g_width=4, d_width=4, d_norm="layer")[1]
    real, fake, eps = torch.randn(4, 3, 64, 64), torch.randn(4, 3, 64, 64), torch.rand(4, 1, 1, 1)
    plain, norms = gradient_penalty(D, real, fake, eps=eps)
    scaled, scaled_norms = gradient_penalty(D, real, fake, eps=eps, grad_scale=65536.0)
    assert torch.allclose(plain, scaled, rtol=1e-5) and torch.allclose(norms, scaled_norms, rtol=1e-5)


def test_compile_is_skipped_with_a_warning_under_a_gradient_penalty(monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda m: pytest.fail("compiled under a gradient penalty"))
    with pytest.warns(UserWarning, match="double backward"):
        _, _, run = _train(loss=WassersteinGPLoss(), steps=1, compile=True, d_norm="layer")
    assert run.step == 1


def test_cpu_step_speed_counts_one_training_step_of_a_tiny_conv_pair():
    """benchmarks/cpu_step_speed.py's FLOP count of one train() step equals the conv formula (2 x multiply-adds)."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from cpu_step_speed import counted_flops
    G = torch.nn.ConvTranspose2d(4, 3, 4, bias=False)                      # (B, 4, 1, 1) -> (B, 3, 4, 4)
    D = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 4, bias=False), torch.nn.Flatten())   # -> (B, 1)
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), 2e-4, (0.5, 0.999)) for m in (G, D))
    batch, g_pass, d_pass = 8, 2 * 4 * 3 * 4 * 4, 2 * 3 * 4 * 4             # per image, one forward each
    flops = counted_flops(lambda: train(G, D, opt_g, opt_d, iter([torch.randn(batch, 3, 4, 4)]), NonSaturatingLoss(),
                                        lambda n: torch.randn(n, 4, 1, 1), 1, options=Options(progress=False)))
    # G: forward + weight gradient; D: real and fake forwards + weight gradients, then G's pass through D (forward,
    # input and weight gradients)
    assert flops == batch * (2 * g_pass + 2 * 2 * d_pass + 3 * d_pass)
