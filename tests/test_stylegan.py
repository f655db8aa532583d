"""The lesson-05 models and the regularised loss: shapes, demodulation, minibatch stddev, lazy R1/R2, augment hook."""
import pytest
import torch
from torch import nn

from gan_lib.losses import DiffAugment, NonSaturatingLoss, Regularised, WassersteinGPLoss
from gan_lib.stylegan import ModulatedConv, minibatch_stddev, stylegan


@pytest.mark.parametrize("size", [32, 64])
def test_generator_and_discriminator_shapes(size):
    torch.manual_seed(0)
    G, D = stylegan(size, latent_dim=16, width=4, mapping_layers=2)
    for z in (torch.randn(6, 16), torch.randn(6, 16, 1, 1)):
        x = G(z)
        assert x.shape == (6, 3, size, size) and D(x).shape == (6, 1)
    G.eval()
    assert G(torch.randn(6, 16)).abs().max() <= 1                     # clamped for sampling
    with pytest.raises(ValueError, match="image_size=48"):
        stylegan(48)


def test_demodulation_gives_unit_variance_outputs_whatever_the_style():
    torch.manual_seed(0)
    conv = ModulatedConv(64, 32, 3, w_dim=8)
    x = torch.randn(4, 64, 16, 16)
    for style_scale in (0.1, 10.0):
        w = torch.randn(4, 8) * style_scale
        assert 0.8 < conv(x, w)[:, :, 1:-1, 1:-1].std() < 1.2


def test_noise_inputs_make_samples_differ_once_their_strength_is_not_zero():
    torch.manual_seed(0)
    G, _ = stylegan(32, latent_dim=16, width=4, mapping_layers=2)
    z = torch.randn(2, 16)
    assert torch.equal(G(z), G(z))                                   # strength starts at 0
    for name, p in G.named_parameters():
        if name.endswith("noise_strength"):
            p.data.fill_(0.5)
    assert not torch.equal(G(z), G(z))                               # training mode: fresh noise


def test_sampling_in_eval_mode_is_reproducible_with_noise_on():
    """Eval mode uses a fixed noise map (StyleGAN2-ADA's noise_mode='const'): seeded samples repeat exactly, the
    global RNG is neither used nor consumed, and the state_dict is unchanged (old checkpoints still load)."""
    from gan_lib.explore import sample_seeded
    torch.manual_seed(0)
    G, _ = stylegan(32, latent_dim=16, width=4, mapping_layers=2)
    for name, p in G.named_parameters():
        if name.endswith("noise_strength"):
            p.data.fill_(0.5)
    first = sample_seeded(G, 8, seed=0)
    torch.manual_seed(123)                                           # another global RNG state
    assert torch.equal(sample_seeded(G, 8, seed=0), first)
    assert not any("noise_const" in key for key in G.state_dict())
    G2, _ = stylegan(32, latent_dim=16, width=4, mapping_layers=2)
    G2.load_state_dict(G.state_dict())
    assert torch.equal(sample_seeded(G2, 8, seed=0), first)           # the map depends on the layer, not the run
    G.eval()
    z = torch.randn(2, 16)
    assert not torch.equal(G(z)[0], G(z)[1])                         # the same map, but the images follow z


def test_minibatch_stddev_is_zero_for_a_collapsed_batch():
    same = torch.randn(1, 5, 4, 4).repeat(8, 1, 1, 1)
    assert minibatch_stddev(same)[:, -1].abs().max() < 1e-3
    assert minibatch_stddev(torch.randn(8, 5, 4, 4))[:, -1].min() > 0.5
    assert minibatch_stddev(torch.randn(6, 5, 4, 4)).shape == (6, 6, 4, 4)   # 6 is not a multiple of 4


class Linear(nn.Module):
    """D(x) = <w, x>: its input gradient is w for every sample, so ||grad||^2 = ||w||^2."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (x.flatten(1) * self.w).sum(1, keepdim=True)


def test_r1_is_lazy_scaled_and_trains_d():
    D = Linear(torch.full((12,), 0.5))                               # ||w||^2 = 3
    real, fake = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    plain = NonSaturatingLoss().discriminator_loss(D, real, fake)[0]
    loss = Regularised(NonSaturatingLoss(), r1=2.0, r2=1.0, every=4)
    first, stats = loss.discriminator_loss(D, real, fake)
    assert stats["R1"] == pytest.approx(3.0) and stats["R2"] == pytest.approx(3.0)
    assert first.item() == pytest.approx(plain.item() + (2.0 / 2 * 4 + 1.0 / 2 * 4) * 3.0, rel=1e-5)
    second, stats = loss.discriminator_loss(D, real, fake)           # not due: the plain loss, last R1 kept
    assert second.item() == pytest.approx(plain.item(), rel=1e-5) and stats["R1"] == pytest.approx(3.0)
    first.backward()
    assert D.w.grad.abs().sum() > 0
    resumed = Regularised(NonSaturatingLoss(), r1=2.0, r2=1.0, every=4)
    resumed.load_state_dict(loss.state_dict())                       # a checkpoint extra: the schedule goes on
    assert resumed.discriminator_loss(D, real, fake)[0].item() == pytest.approx(plain.item(), rel=1e-5)
    assert loss.state_dict() == {"calls": 2} and resumed.state_dict() == {"calls": 3}


def test_augment_is_applied_to_real_and_fake_in_both_steps():
    seen = []
    D = Linear(torch.ones(12))
    loss = Regularised(NonSaturatingLoss(), augment=lambda x: seen.append(x.shape) or -x)
    real, fake = torch.randn(4, 3, 2, 2), torch.randn(5, 3, 2, 2)
    loss_d, stats = loss.discriminator_loss(D, real, fake)
    loss_g, _ = loss.generator_loss(D, fake)
    assert seen == [real.shape, fake.shape, fake.shape]
    assert stats["D(x)"] == pytest.approx(torch.sigmoid(-D(real)).mean().item())   # D saw augment(real)
    fake_g = fake.clone().requires_grad_(True)
    Regularised(NonSaturatingLoss(), augment=DiffAugment(p=1.0)).generator_loss(D, fake_g)[0].backward()
    assert fake_g.grad.abs().sum() > 0                                # G's gradient flows through the augment


def test_wrapping_wgan_gp_passes_the_gradient_scale_on():
    class Recording(WassersteinGPLoss):
        def discriminator_loss(self, D, real, fake, scale=1.0):
            self.scale = scale
            return super().discriminator_loss(D, real, fake, scale)

    loss, real, fake = Regularised(Recording()), torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    torch.manual_seed(0)
    scaled = loss.discriminator_loss(Linear(torch.ones(12)), real, fake, scale=8.0)[0]
    assert loss.base.scale == 8.0                                    # the fp16 scale reaches the penalty
    torch.manual_seed(0)                                             # the same interpolation, unscaled
    assert scaled.item() == pytest.approx(loss.discriminator_loss(Linear(torch.ones(12)), real, fake)[0].item())
    assert loss.base.scale == 1.0
    with pytest.raises(ValueError, match="every >= 1"):
        Regularised(NonSaturatingLoss(), every=0)
