"""A small StyleGAN2-style generator and a residual discriminator (lesson 05).

G (Karras et al., 2020): a mapping network, modulated convs with noise inputs on a learned 4x4 constant, to-RGB skips.
D: residual blocks, minibatch stddev. Equalised learning rate throughout: train with Adam 2e-3, betas (0, 0.99).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from gan_lib.models import _as_latent


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """LeakyReLU(0.2) times sqrt(2), which keeps the signal's variance through the layer."""
    return F.leaky_relu(x, 0.2) * math.sqrt(2)


class EqualLinear(nn.Module):
    """Equalised learning rate: weights ~N(0, 1), used times 1/sqrt(fan_in); ``lr_mul`` < 1 slows it (mapping: 0.01)."""

    def __init__(self, c_in: int, c_out: int, bias_init: float = 0.0, lr_mul: float = 1.0, act: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((c_out,), bias_init / lr_mul))
        self.scale, self.lr_mul, self.act = lr_mul / math.sqrt(c_in), lr_mul, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:                          # (B, c_in) -> (B, c_out)
        y = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return lrelu(y) if self.act else y


class EqualConv2d(nn.Conv2d):
    """Conv2d ("same" padding) with the equalised learning rate."""

    def __init__(self, c_in: int, c_out: int, k: int, bias: bool = True):
        super().__init__(c_in, c_out, k, padding=k // 2, bias=bias)
        nn.init.normal_(self.weight)
        if bias:
            nn.init.zeros_(self.bias)
        self.scale = 1 / math.sqrt(c_in * k * k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.scale, self.bias)


class ModulatedConv(nn.Module):
    """x (B, c_in, H, W), w (B, w_dim) -> (B, c_out, H, W): the style s = affine(w) scales the input channels."""

    def __init__(self, c_in: int, c_out: int, k: int, w_dim: int, demodulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k))
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)                    # styles start at 1
        self.scale, self.demodulate, self.padding = 1 / math.sqrt(c_in * k * k), demodulate, k // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.affine(w)                                                       # (B, c_in)
        weight = self.weight * self.scale                                        # (c_out, c_in, k, k)
        x = F.conv2d(x * s[:, :, None, None], weight, padding=self.padding)    # (B, c_out, H, W)
        if self.demodulate:                            # StyleGAN2's W * s / norm: unit std per output channel
            norm = (weight.square().sum(dim=(2, 3))[None] * s.square()[:, None]).sum(2)    # (B, c_out)
            x = x * torch.rsqrt(norm + 1e-8)[:, :, None, None]
        return x


class StyleLayer(nn.Module):
    """Modulated conv + per-pixel noise times a learned strength (starts at 0) + bias, LeakyReLU."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, size: int, seed: int = 0):
        super().__init__()
        self.conv = ModulatedConv(c_in, c_out, 3, w_dim)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(1, c_out, 1, 1))
        const = torch.randn(1, 1, size, size, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("noise_const", const, persistent=False)            # (1, 1, size, size)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = self.conv(x, w)                                                      # (B, c_out, H, W)
        if self.training:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)   # (B, 1, H, W)
        else:                         # eval: a fixed seeded map (StyleGAN2-ADA's noise_mode='const'), one z, one image
            noise = self.noise_const.to(x.dtype)                                 # (1, 1, H, W), broadcast over B
        return lrelu(x + self.noise_strength * noise + self.bias)


class ToRGB(nn.Module):
    """1x1 modulated conv to 3 channels, no demodulation (the colours keep their scale)."""

    def __init__(self, c_in: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv(c_in, 3, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias                                       # (B, 3, H, W)


def _widths(image_size: int, width: int) -> dict[int, int]:
    if image_size not in (32, 64, 128):
        raise ValueError(f"image_size={image_size} is not supported: use 32, 64 or 128.")
    sizes = [4 * 2 ** i for i in range(int(math.log2(image_size)) - 1)]         # 4, 8, ..., image_size
    return {s: width * min(8, image_size // s) for s in sizes}        # channels per size; 64 px: 8w, 8w, 4w, 2w, w


class StyleGenerator(nn.Module):
    """z (B, latent_dim) or (B, latent_dim, 1, 1) -> image (B, 3, S, S): no tanh; clamped to [-1, 1] in eval."""

    def __init__(self, image_size: int = 64, latent_dim: int = 128, width: int = 32, mapping_layers: int = 4):
        super().__init__()
        self.latent_dim, w_dim, ch = latent_dim, latent_dim, _widths(image_size, width)
        self.mapping = nn.Sequential(*[EqualLinear(w_dim, w_dim, lr_mul=0.01, act=True) for _ in range(mapping_layers)])
        sizes = list(ch)
        self.const = nn.Parameter(torch.randn(1, ch[4], 4, 4))
        self.first, self.first_rgb = StyleLayer(ch[4], ch[4], w_dim, 4), ToRGB(ch[4], w_dim)
        self.blocks = nn.ModuleList(nn.ModuleList([StyleLayer(ch[a], ch[b], w_dim, b, seed=2 * i + 1),
                                                   StyleLayer(ch[b], ch[b], w_dim, b, seed=2 * i + 2),
                                                   ToRGB(ch[b], w_dim)])
                                    for i, (a, b) in enumerate(zip(sizes, sizes[1:])))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = _as_latent(z, self.latent_dim).flatten(1)                            # (B, L)
        w = self.mapping(z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8))   # pixel norm, then (B, w_dim)
        x = self.first(self.const.expand(len(z), -1, -1, -1), w)                 # (B, 8w, 4, 4)
        rgb = self.first_rgb(x, w)                                               # (B, 3, 4, 4)
        for layer1, layer2, to_rgb in self.blocks:                               # each doubles H and W
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)   # (B, C, 2H, 2W)
            x = layer2(layer1(x, w), w)
            rgb = F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False) + to_rgb(x, w)
        return rgb if self.training else rgb.clamp(-1, 1)                        # (B, 3, S, S)


class ResidualBlock(nn.Module):
    """(B, c_in, H, W) -> (B, c_out, H/2, W/2): two 3x3 convs and average pooling, plus a 1x1 skip, / sqrt(2)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1, self.conv2 = EqualConv2d(c_in, c_in, 3), EqualConv2d(c_in, c_out, 3)
        self.skip = EqualConv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main = F.avg_pool2d(lrelu(self.conv2(lrelu(self.conv1(x)))), 2)
        return (main + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2)


def minibatch_stddev(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    """Append one channel: the std of each feature across a group of samples, averaged (B, C+1, H, W)."""
    B, C, H, W = x.shape
    g = math.gcd(group, B)
    y = x.reshape(g, B // g, C, H, W).float()                                   # samples i, i+B/g, ... form a group
    y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))       # (B/g,)
    y = y.to(x.dtype).view(-1, 1, 1, 1).repeat(g, 1, H, W)                       # (B, 1, H, W)
    return torch.cat([x, y], dim=1)


class ResidualDiscriminator(nn.Module):
    """image (B, 3, S, S) -> one logit (B, 1). No normalisation layers: R1 and DiffAugment keep it sane."""

    def __init__(self, image_size: int = 64, width: int = 32):
        super().__init__()
        ch = _widths(image_size, width)
        sizes = list(ch)[::-1]                                                   # S, S/2, ..., 4
        self.from_rgb = EqualConv2d(3, ch[image_size], 1)
        self.blocks = nn.Sequential(*[ResidualBlock(ch[a], ch[b]) for a, b in zip(sizes, sizes[1:])])
        self.conv = EqualConv2d(ch[4] + 1, ch[4], 3)
        self.fc, self.out = EqualLinear(ch[4] * 16, ch[4], act=True), EqualLinear(ch[4], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(lrelu(self.from_rgb(x)))                                 # (B, 8w, 4, 4)
        x = lrelu(self.conv(minibatch_stddev(x)))                                # (B, 8w, 4, 4)
        return self.out(self.fc(x.flatten(1)))                                   # (B, 1)


def stylegan(image_size: int = 64, latent_dim: int = 128, width: int = 32,
             mapping_layers: int = 4) -> tuple[StyleGenerator, ResidualDiscriminator]:
    """The lesson-05 pair (G, D): channels 8w at 4x4 down to w at full size; ``mapping_layers`` (StyleGAN2: 8)."""
    return StyleGenerator(image_size, latent_dim, width, mapping_layers), ResidualDiscriminator(image_size, width)
