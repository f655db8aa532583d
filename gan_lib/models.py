"""Plain ``nn.Module`` s to print and read: mlp_gan (lesson 02), dcgan (lessons 03-04). Every D returns logits."""
import math

import torch
from torch import nn


def uniform_noise(n: int, latent_dim: int = 100, generator: torch.Generator | None = None) -> torch.Tensor:
    """z ~ Uniform(-1, 1), shape (n, latent_dim): the original GAN paper's MNIST noise."""
    return torch.rand(n, latent_dim, generator=generator) * 2 - 1


def gaussian_noise(n: int, latent_dim: int = 100, generator: torch.Generator | None = None,
                   device=None) -> torch.Tensor:
    """z ~ N(0, I), shape (n, latent_dim, 1, 1) as in DCGAN; ``device="cuda"`` draws it with the GPU's RNG."""
    return torch.randn(n, latent_dim, 1, 1, generator=generator, device=device)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---------------------------------------------------------------------------------------------- MLP (lesson 02)
class MLPGenerator(nn.Module):
    """z (B, latent_dim) -> image (B, *image_shape) in [-1, 1] through fully connected layers."""

    def __init__(self, latent_dim: int, hidden: tuple[int, ...], image_shape: tuple[int, ...], batchnorm: bool):
        super().__init__()
        self.latent_dim, self.image_shape = latent_dim, tuple(image_shape)
        layers, widths = [], [latent_dim, *hidden]
        for i, (c_in, c_out) in enumerate(zip(widths, widths[1:])):      # (B, c_in) -> (B, c_out)
            layers.append(nn.Linear(c_in, c_out))
            if batchnorm and i > 0:                        # not on the first layer, as in DCGAN
                layers.append(nn.BatchNorm1d(c_out))
            layers.append(nn.LeakyReLU(0.2))
        layers += [nn.Linear(widths[-1], math.prod(image_shape)), nn.Tanh()]   # (B, 784), in [-1, 1]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.flatten(1)).view(-1, *self.image_shape)         # (B, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """image (B, *image_shape) -> one logit (B, 1); dropout keeps D from memorising."""

    def __init__(self, hidden: tuple[int, ...], image_shape: tuple[int, ...], dropout: float):
        super().__init__()
        layers, widths = [], [math.prod(image_shape), *hidden]
        for c_in, c_out in zip(widths, widths[1:]):        # (B, c_in) -> (B, c_out)
            layers += [nn.Linear(c_in, c_out), nn.LeakyReLU(0.2)]
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(widths[-1], 1))            # (B, 1) logit
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))                      # (B, 784) -> (B, 1)


def mlp_gan(latent_dim: int = 100, g_hidden=(128, 256, 512), d_hidden=(512, 256),
            image_shape=(1, 28, 28), d_dropout: float = 0.3, g_batchnorm: bool = True):
    """The lesson-02 pair (G, D) for MNIST-sized images; ``d_dropout=0`` turns D's dropout off."""
    return (MLPGenerator(latent_dim, g_hidden, image_shape, g_batchnorm),
            MLPDiscriminator(d_hidden, image_shape, d_dropout))


# ------------------------------------------------------------------------------------- DCGAN (lessons 03-04)
def _edge_layer(image_size: int) -> tuple[int, int, int]:
    if image_size not in (64, 96):
        raise ValueError(f"image_size={image_size!r} is not supported: use 64 or 96.")
    return (4, 2, 1) if image_size == 64 else (5, 3, 1)     # (kernel, stride, padding) from 32x32 to the image


NORMS = {"batch": nn.BatchNorm2d,
         "instance": lambda c: nn.InstanceNorm2d(c, affine=True),    # per sample and channel, over H, W
         "layer": lambda c: nn.GroupNorm(1, c)}                       # per sample, over C, H, W


def dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's init for ``model.apply(dcgan_init)``: weights N(0, 0.02), norm weights N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)) and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)


def _as_latent(z: torch.Tensor, latent_dim: int) -> torch.Tensor:
    if z.dim() not in (2, 4) or math.prod(z.shape[1:]) != latent_dim:
        raise ValueError(f"latent input of shape {tuple(z.shape)} does not fit: pass (B, {latent_dim}) or "
                         f"(B, {latent_dim}, 1, 1), e.g. gaussian_noise(B, {latent_dim}).")
    return z.reshape(len(z), latent_dim, 1, 1)                 # (B, latent_dim) or (B, latent_dim, 1, 1) -> 4-d


class DCGANGenerator(nn.Module):
    """z (B, latent_dim, 1, 1) -> image (B, 3, S, S) in [-1, 1]: 4 -> 8 -> 16 -> 32 -> S as the width halves 8w -> w."""

    def __init__(self, image_size: int = 64, latent_dim: int = 100, width: int = 64):
        super().__init__()
        self.latent_dim = latent_dim
        kernel, stride, padding = _edge_layer(image_size)
        widths = [8 * width, 4 * width, 2 * width, width]
        layers = [nn.ConvTranspose2d(latent_dim, widths[0], 4, 1, 0, bias=False),     # (B, 512, 4, 4)
                  nn.BatchNorm2d(widths[0]), nn.ReLU()]
        for c_in, c_out in zip(widths, widths[1:]):        # (B, 256, 8, 8) -> (B, 128, 16, 16) -> (B, 64, 32, 32)
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [nn.ConvTranspose2d(width, 3, kernel, stride, padding, bias=False), nn.Tanh()]  # (B, 3, S, S)
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(_as_latent(z, self.latent_dim))   # (B, 3, S, S)


class DCGANDiscriminator(nn.Module):
    """image (B, 3, S, S) -> one logit (B, 1), G's mirror: S -> 32 -> 16 -> 8 -> 4 as the width doubles w -> 8w."""

    def __init__(self, image_size: int = 64, width: int = 64, norm: str | None = "batch"):
        super().__init__()
        if norm not in (*NORMS, None):
            raise ValueError(f"d_norm={norm!r} is not known: use 'batch', 'instance', 'layer' or None.")
        kernel, stride, padding = _edge_layer(image_size)
        widths = [width, 2 * width, 4 * width, 8 * width]
        layers = [nn.Conv2d(3, width, kernel, stride, padding, bias=False), nn.LeakyReLU(0.2)]  # (B, 64, 32, 32)
        for c_in, c_out in zip(widths, widths[1:]):        # (B, 128, 16, 16) -> (B, 256, 8, 8) -> (B, 512, 4, 4)
            norm_layer = [NORMS[norm](c_out)] if norm else []
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=norm is None), *norm_layer, nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False))                  # (B, 1, 1, 1)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)                      # (B, 1) logits, no sigmoid


def dcgan(image_size: int = 64, latent_dim: int = 100, g_width: int = 64, d_width: int = 64,
          d_norm: str | None = "batch") -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """The lesson-03/04 pair with ``dcgan_init``; WGAN-GP needs a d_norm that keeps samples apart (not "batch")."""
    G = DCGANGenerator(image_size, latent_dim, g_width)
    D = DCGANDiscriminator(image_size, d_width, d_norm)
    return G.apply(dcgan_init), D.apply(dcgan_init)


def first_attempt_gan(image_size: int = 64, latent_dim: int = 100) -> tuple[nn.Sequential, nn.Sequential]:
    """The model a student writes first (lesson 03's "seed 000"): no BatchNorm, so it trains worse than ``dcgan``."""
    kernel, stride, padding = _edge_layer(image_size)
    G = nn.Sequential(
        nn.Flatten(),                                              # (B, 100)
        nn.Linear(latent_dim, 256 * 4 * 4), nn.ReLU(),             # (B, 4096)
        nn.Unflatten(1, (256, 4, 4)),                              # (B, 256, 4, 4)
        nn.ConvTranspose2d(256, 128, 4, 2, 1), nn.ReLU(),          # (B, 128, 8, 8)
        nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(),           # (B, 64, 16, 16)
        nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),            # (B, 32, 32, 32)
        nn.ConvTranspose2d(32, 3, kernel, stride, padding),        # (B, 3, 64, 64) or (B, 3, 96, 96)
        nn.Tanh())
    G.latent_dim = latent_dim
    D = nn.Sequential(
        nn.Conv2d(3, 32, kernel, stride, padding), nn.LeakyReLU(0.2),  # (B, 32, 32, 32)
        nn.Conv2d(32, 64, 4, 2, 1), nn.LeakyReLU(0.2),             # (B, 64, 16, 16)
        nn.Conv2d(64, 128, 4, 2, 1), nn.LeakyReLU(0.2),            # (B, 128, 8, 8)
        nn.Conv2d(128, 256, 4, 2, 1), nn.LeakyReLU(0.2),           # (B, 256, 4, 4)
        nn.Flatten(),                                              # (B, 4096)
        nn.Linear(256 * 4 * 4, 1))                                 # (B, 1) logit
    return G.apply(dcgan_init), D.apply(dcgan_init)
