"""Model factories: shapes, output ranges, norms, init and parameter counts of the MLP and DCGAN families."""
import pytest
import torch
import torch.nn as nn

from gan_lib.models import (DCGANDiscriminator, DCGANGenerator, count_parameters, dcgan, dcgan_init, first_attempt_gan,
                            gaussian_noise, mlp_gan, uniform_noise)

SIZES = (64, 96)
D_NORMS = ("batch", "instance", "layer", None)
NORM_TYPE = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d, "layer": nn.GroupNorm}


def _small_dcgan(image_size, d_norm="batch"):
    """Narrow widths keep the tests fast; the layout is the same as at width 64."""
    torch.manual_seed(0)
    return dcgan(image_size, latent_dim=16, g_width=8, d_width=8, d_norm=d_norm)


# ---------------------------------------------------------------------------------------------- MLP (lesson 02)

def test_mlp_gan_shapes():
    G, D = mlp_gan(latent_dim=100)
    x = G(uniform_noise(4, 100))                                           # (4, 1, 28, 28)
    assert x.shape == (4, 1, 28, 28)
    assert D(x).shape == (4, 1)


def test_mlp_generator_in_eval_mode_maps_noise_to_images_in_range():
    G = mlp_gan(latent_dim=100)[0].eval()
    with torch.no_grad():
        x = G(torch.randn(3, 100) * 10)                                    # large z pushes tanh to its limits
    assert x.shape == (3, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1


# ------------------------------------------------------------------------------------------------------- DCGAN

@pytest.mark.parametrize("image_size", SIZES)
@pytest.mark.parametrize("d_norm", D_NORMS)
def test_dcgan_shapes_and_ranges(image_size, d_norm):
    G, D = _small_dcgan(image_size, d_norm)
    assert isinstance(G, DCGANGenerator) and isinstance(D, DCGANDiscriminator)
    assert G.latent_dim == 16
    batches = (2,) if d_norm == "batch" else (2, 1)                        # a per-sample critic works on one image
    for b in batches:
        x = G(gaussian_noise(b, 16))
        assert x.shape == (b, 3, image_size, image_size)
        assert x.min() >= -1 and x.max() <= 1
        assert D(x).shape == (b, 1)


@pytest.mark.parametrize("image_size", SIZES)
def test_first_attempt_gan_shapes(image_size):
    torch.manual_seed(0)
    G, D = first_attempt_gan(image_size, latent_dim=100)
    assert G.latent_dim == 100
    for b in (2, 1):
        x = G(gaussian_noise(b, 100))
        assert x.shape == (b, 3, image_size, image_size)
        assert x.min() >= -1 and x.max() <= 1
        assert D(x).shape == (b, 1)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) for m in [*G.modules(), *D.modules()])


def test_first_attempt_gan_gets_gradients_everywhere():
    torch.manual_seed(0)
    G, D = first_attempt_gan(64, latent_dim=8)
    logits = D(G(torch.randn(2, 8)))                                       # flat latent input works too
    nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)).backward()
    grads = [p.grad for p in [*G.parameters(), *D.parameters()]]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_generator_accepts_flat_and_image_shaped_latents():
    G, _ = _small_dcgan(64)
    G.eval()
    z = gaussian_noise(3, 16)                                              # (3, 16, 1, 1)
    with torch.no_grad():
        assert torch.equal(G(z), G(z.flatten(1)))
    with pytest.raises(ValueError, match="gaussian_noise"):
        G(torch.randn(3, 15))


def test_discriminator_returns_unbounded_logits():
    _, D = _small_dcgan(64)
    assert not isinstance(D.net[-1], nn.Sigmoid)
    with torch.no_grad():
        D.net[-1].weight.mul_(1000)
        logits = D(torch.rand(4, 3, 64, 64) * 2 - 1)
    assert logits.abs().max() > 1                                          # a sigmoid could never exceed 1


@pytest.mark.parametrize("d_norm", ["instance", "layer", None])
def test_critic_has_no_batchnorm_and_scores_each_sample_alone(d_norm):
    _, D = _small_dcgan(96, d_norm)
    norms = [m for m in D.modules() if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm))]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in norms)
    assert len(norms) == (0 if d_norm is None else 3)
    assert all(type(m) is NORM_TYPE[d_norm] for m in norms)
    x = torch.randn(3, 3, 96, 96, requires_grad=True)
    scores = D(x)                                                          # train mode, as in WGAN-GP
    assert torch.allclose(scores[1:2], D(x[1:2]), atol=1e-5)               # no mixing between samples
    grad, = torch.autograd.grad(scores.sum(), x, create_graph=True)        # the gradient penalty's graph
    penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    penalty.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in D.parameters())


def test_batchnorm_discriminator_mixes_samples_in_train_mode():
    """The reason the critic must not use BatchNorm: one sample's score depends on the rest of the batch."""
    _, D = _small_dcgan(64, "batch")
    x = torch.randn(3, 3, 64, 64)
    assert not torch.allclose(D(x)[1:2], D(x[1:2]), atol=1e-5)


def test_dcgan_init_statistics():
    torch.manual_seed(0)
    G, D = dcgan(64)
    convs = [m for m in [*G.modules(), *D.modules()] if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    big = [m.weight for m in convs if m.weight.numel() > 100_000]
    assert len(big) == 7                                                  # 4 in G, 3 in D
    for w in big:
        assert abs(w.mean().item()) < 0.001 and w.std().item() == pytest.approx(0.02, abs=0.001)
    bns = [m for m in [*G.modules(), *D.modules()] if isinstance(m, nn.BatchNorm2d)]
    weights = torch.cat([m.weight.detach() for m in bns])
    assert weights.mean().item() == pytest.approx(1.0, abs=0.005)
    assert weights.std().item() == pytest.approx(0.02, abs=0.005)
    assert all((m.bias == 0).all() for m in bns)


def test_dcgan_init_resets_default_pytorch_init():
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 64, 4, bias=True), nn.GroupNorm(1, 64), nn.InstanceNorm2d(64, affine=True),
              nn.Linear(16, 256)]
    assert layers[0].weight.std().item() > 0.025                           # PyTorch's default is wider
    for m in layers:
        m.apply(dcgan_init)
    assert layers[0].weight.std().item() == pytest.approx(0.02, abs=0.002)
    assert layers[3].weight.std().item() == pytest.approx(0.02, abs=0.002)
    assert (layers[0].bias == 0).all() and (layers[3].bias == 0).all()
    for norm in layers[1:3]:
        assert norm.weight.mean().item() == pytest.approx(1.0, abs=0.01) and (norm.bias == 0).all()


@pytest.mark.parametrize("factory", [dcgan, first_attempt_gan])
def test_bad_image_size_raises(factory):
    with pytest.raises(ValueError, match="64 or 96"):
        factory(image_size=128)


def test_bad_d_norm_raises():
    with pytest.raises(ValueError, match="'batch', 'instance', 'layer' or None"):
        dcgan(64, d_norm="spectral")


def test_parameter_counts_match_the_published_models():
    # PyTorch DCGAN tutorial, nz=100, width 64, no conv biases: every conv is c_in * c_out * k * k weights.
    convs_g = 100 * 512 * 16 + 512 * 256 * 16 + 256 * 128 * 16 + 128 * 64 * 16
    convs_d = 64 * 128 * 16 + 128 * 256 * 16 + 256 * 512 * 16 + 512 * 1 * 16
    bn_g, bn_d = 2 * (512 + 256 + 128 + 64), 2 * (128 + 256 + 512)
    (G64, D64), (G96, D96), (_, critic) = dcgan(64), dcgan(96), dcgan(64, d_norm=None)
    first_g, first_d = first_attempt_gan(64)
    G, D = G64, D64
    assert count_parameters(G) == convs_g + 64 * 3 * 16 + bn_g == 3_576_704
    assert count_parameters(D) == 3 * 64 * 16 + convs_d + bn_d == 2_765_568
    G, D = G96, D96                                                        # the 5x5 edge layers of pytorch-book
    assert count_parameters(G) == convs_g + 64 * 3 * 25 + bn_g
    assert count_parameters(D) == 3 * 64 * 25 + convs_d + bn_d
    # without a norm layer, conv biases take the place of the norm shifts
    assert count_parameters(critic) == 3 * 64 * 16 + convs_d + (128 + 256 + 512)
    assert 0.5e6 < count_parameters(first_g) < 2e6 and 0.3e6 < count_parameters(first_d) < 1.5e6
