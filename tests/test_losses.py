"""Lesson 04's losses (WGAN, WGAN-GP, hinge), checked against hand computations on fixed tensors.

Students can run these on their own implementations: every expected number is worked out by hand below.
"""
import math

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from gan_lib import seed_everything
from gan_lib.losses import (GANLoss, HingeLoss, NonSaturatingLoss, Regularised, WassersteinGPLoss, WassersteinLoss,
                            gradient_penalty)
from gan_lib.train import Options, train
from gan_lib.data import infinite

W = [0.5, -1.0, 2.0, 0.0]                        # a linear critic's weights on 1x2x2 images
W_L2 = math.sqrt(0.25 + 1 + 4)                  # ||w||_2 by hand


def _linear_critic():
    """f(x) = w . x + b on (B, 1, 2, 2) images: its gradient is w everywhere."""
    D = nn.Sequential(nn.Flatten(), nn.Linear(4, 1))
    with torch.no_grad():
        D[1].weight.copy_(torch.tensor([W]))
        D[1].bias.fill_(0.3)
    return D


class _HalfSquaredNorm(nn.Module):
    """f(x) = ||x||^2 / 2 per sample, so grad f(x) = x: the gradient norm at x̂ is ||x̂||."""

    def forward(self, x):
        return 0.5 * x.flatten(1).pow(2).sum(1, keepdim=True)                # (B, 1)


def test_wasserstein_loss_on_given_scores_and_on_a_constant_critic():
    scores = nn.Identity()                                                   # the inputs are the scores f(.)
    real, fake = torch.tensor([[1.0], [3.0]]), torch.tensor([[-1.0], [0.0]])
    loss, stats = WassersteinLoss().discriminator_loss(scores, real, fake)
    assert loss.item() == pytest.approx(-0.5 - 2.0)                          # mean f(fake) - mean f(real)
    assert stats["W estimate"].item() == pytest.approx(2.5)
    assert (stats["f(x)"].item(), stats["f(G(z))"].item()) == pytest.approx((2.0, -0.5))
    g_loss, _ = WassersteinLoss().generator_loss(scores, fake)
    assert g_loss.item() == pytest.approx(0.5)                               # -mean f(fake)

    constant = nn.Sequential(nn.Flatten(), nn.Linear(4, 1))
    with torch.no_grad():
        constant[1].weight.zero_()
        constant[1].bias.fill_(7.0)
    loss, stats = WassersteinLoss().discriminator_loss(constant, torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2))
    assert loss.item() == 0 and stats["W estimate"].item() == 0
    assert WassersteinLoss().generator_loss(constant, torch.randn(3, 1, 2, 2))[0].item() == pytest.approx(-7.0)


def test_penalty_of_a_linear_critic_is_exact():
    real, fake = torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2)
    penalty, norms = gradient_penalty(_linear_critic(), real, fake)
    assert norms.shape == (5,) and torch.allclose(norms, torch.full((5,), W_L2))
    assert penalty.item() == pytest.approx((W_L2 - 1) ** 2, rel=1e-5)

    # the whole critic loss: w . (mean fake - mean real) + lambda (||w|| - 1)^2 (the bias cancels)
    w = torch.tensor(W)
    gap = (w * (fake.mean(0) - real.mean(0)).flatten()).sum().item()
    loss, stats = WassersteinGPLoss(gp_weight=10.0).discriminator_loss(_linear_critic(), real, fake)
    assert loss.item() == pytest.approx(gap + 10 * (W_L2 - 1) ** 2, rel=1e-5)
    assert stats["gradient penalty"].item() == pytest.approx((W_L2 - 1) ** 2, rel=1e-5)
    assert stats["grad norm at x̂"].item() == pytest.approx(W_L2, rel=1e-5)
    assert stats["W estimate"].item() == pytest.approx(-gap, rel=1e-5, abs=1e-6)


def test_penalty_is_taken_at_the_interpolates_per_sample():
    real, fake = torch.ones(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)             # ||real|| = 2, ||fake|| = 0
    eps = torch.tensor([0.25, 1.0]).view(2, 1, 1, 1)
    penalty, norms = gradient_penalty(_HalfSquaredNorm(), real, fake, eps=eps)
    assert norms.tolist() == pytest.approx([0.5, 2.0])                       # ||eps * real|| = 2 eps
    assert penalty.item() == pytest.approx(((0.5 - 1) ** 2 + (2 - 1) ** 2) / 2)
    _, random_norms = gradient_penalty(_HalfSquaredNorm(), torch.ones(64, 1, 2, 2), torch.zeros(64, 1, 2, 2))
    assert 0 <= random_norms.min() < random_norms.max() <= 2                 # eps ~ U(0, 1), one per sample


def test_penalty_gradient_reaches_the_critic_weights():
    D = _linear_critic()
    penalty, _ = gradient_penalty(D, torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2))
    penalty.backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||; the bias does not enter the penalty
    expected = torch.tensor([W]) * 2 * (W_L2 - 1) / W_L2
    assert torch.allclose(D[1].weight.grad, expected, atol=1e-6)
    assert D[1].bias.grad is None or D[1].bias.grad.abs().max() == 0


def test_hinge_loss_on_fixed_scores():
    scores = nn.Identity()
    real, fake = torch.tensor([[2.0], [0.5]]), torch.tensor([[-3.0], [0.2]])
    loss, stats = HingeLoss().discriminator_loss(scores, real, fake)
    assert loss.item() == pytest.approx((0 + 0.5) / 2 + (0 + 1.2) / 2)     # relu(1 - f(x)), relu(1 + f(G(z)))
    assert stats["f(x)"].item() == pytest.approx(1.25)
    assert HingeLoss().generator_loss(scores, fake)[0].item() == pytest.approx(1.4)


def _image_gan(seed=0):
    """A 3x8x8 image GAN small enough for a CPU test: conv critic with instance norm, no batch norm."""
    seed_everything(seed)
    loader = DataLoader(TensorDataset(torch.rand(32, 3, 8, 8) * 2 - 1), batch_size=8, drop_last=True)
    G = nn.Sequential(nn.Linear(4, 3 * 8 * 8), nn.Tanh(), nn.Unflatten(1, (3, 8, 8)))
    D = nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), nn.InstanceNorm2d(8, affine=True), nn.LeakyReLU(0.2),
                      nn.Conv2d(8, 1, 4, 1, 0), nn.Flatten())                # (B, 1)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.0, 0.9))
    return G, D, opt_g, opt_d, infinite(loader)


def _noise(n):
    return torch.randn(n, 4)


def test_weight_clipping_holds_after_every_critic_step_of_the_real_loop():
    G, D, opt_g, opt_d, batches = _image_gan()
    assert max(p.abs().max() for p in D.parameters()) > 0.01                 # else the test proves nothing
    run = train(G, D, opt_g, opt_d, batches, WassersteinLoss(clip=0.01), _noise, until=2,
                options=Options(d_steps=2, progress=False))
    assert max(p.abs().max().item() for p in D.parameters()) == pytest.approx(0.01)
    assert len(run.history["W estimate"]) == 2 and all(math.isfinite(v) for v in run.history["loss_d"])
    before = [p.clone() for p in D.parameters()]
    WassersteinLoss(clip=None).after_discriminator_step(D)                   # no clip: nothing changes
    assert all(torch.equal(a, b) for a, b in zip(before, D.parameters()))


def test_gradient_penalty_runs_in_the_real_loop():
    G, D, opt_g, opt_d, batches = _image_gan(seed=1)
    run = train(G, D, opt_g, opt_d, batches, WassersteinGPLoss(), _noise, until=2, options=Options(progress=False))
    for key in ("gradient penalty", "grad norm at x̂", "W estimate", "f(x)", "f(G(z))", "f(G(z)) after D step"):
        assert len(run.history[key]) == 2 and all(math.isfinite(v) for v in run.history[key]), key
    assert all(v > 0 for v in run.history["grad norm at x̂"])


def test_every_loss_is_a_gan_loss_and_bad_values_are_refused():
    for loss in (NonSaturatingLoss(0.9), WassersteinLoss(0.01), WassersteinGPLoss(5.0), HingeLoss(),
                 Regularised(HingeLoss(), r1=1.0)):
        assert isinstance(loss, GANLoss)                                    # the hooks the loop calls
    assert WassersteinGPLoss().double_backward and Regularised(NonSaturatingLoss(), r1=0.1).double_backward
    assert not NonSaturatingLoss().double_backward and not Regularised(NonSaturatingLoss()).double_backward
    with pytest.raises(ValueError, match="gp_weight=-1"):
        WassersteinGPLoss(gp_weight=-1)
    with pytest.raises(ValueError, match="clip=0"):
        WassersteinLoss(clip=0)
    with pytest.raises(ValueError, match="gp_weight=-1"):
        WassersteinGPLoss(gp_weight=-1)
