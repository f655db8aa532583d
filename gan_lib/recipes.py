"""The lessons' training recipes by name, for the trainer command (``python -m gan_lib.trainer --recipe ...``).

    recipe = build("dcgan64", device, width=64)
    train(recipe.G, recipe.D, recipe.opt_g, recipe.opt_d, batches, recipe.loss, recipe.noise, steps=recipe.steps,
          **recipe.train_options)

Each recipe builds G, D, their optimisers and the loss the way its lesson does, with the lesson's full-mode batch
size and number of steps:

    dcgan64   lesson 03: DCGAN at 64 px, batch norm in G and D, Adam 2e-4 (0.5, 0.999), BCE, batch 128, 6,000 steps
    wgan-gp   lesson 04: DCGAN G, layer-norm critic, Adam 1e-4 (0, 0.9), WGAN-GP (weight 10), 5 critic steps per
              G step, batch 64, 6,000 steps
    modern    lesson 05's last row: StyleGAN2-style G (width // 2) and residual D, Adam 2e-3 (0, 0.99), BCE with lazy
              R1 (0.1 every 16 steps) and DiffAugment (p 0.2), an EMA of G (half-life 10,000 images), batch 64,
              20,000 steps (the lesson trains by wall clock instead; this step count is a choice, not a measurement)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from gan_lib.fast import adam
from gan_lib.augment import DiffAugment
from gan_lib.losses import NonSaturatingLoss, Regularised, WassersteinGPLoss
from gan_lib.models import dcgan, gaussian_noise
from gan_lib.stylegan import stylegan
from gan_lib.train import make_ema


@dataclass
class Recipe:
    """What one run of a lesson's recipe needs besides the images; G and D are on ``device``."""
    name: str
    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    loss: object
    noise: Callable[..., torch.Tensor]     # noise(n, generator=None) -> (n, latent_dim, 1, 1) on the CPU
    batch: int                             # the lesson's batch size (all ranks together under DDP)
    steps: int                             # the lesson's full-mode generator steps
    train_options: dict = field(default_factory=dict)   # more keyword arguments for gan_lib.train.train
    image_size: int = 64


def _noise(latent_dim: int):
    return lambda n, generator=None: gaussian_noise(n, latent_dim, generator=generator)   # (n, latent_dim, 1, 1)


def _dcgan64(device, width: int) -> Recipe:
    G, D = (m.to(device) for m in dcgan(64, g_width=width, d_width=width))
    return Recipe("dcgan64", G, D, adam(G.parameters(), device), adam(D.parameters(), device), NonSaturatingLoss(),
                  _noise(100), batch=128, steps=6000)


def _wgan_gp(device, width: int) -> Recipe:
    G, D = (m.to(device) for m in dcgan(64, g_width=width, d_width=width, d_norm="layer"))
    opt = lambda model: adam(model.parameters(), device, lr=1e-4, betas=(0.0, 0.9))   # noqa: E731
    return Recipe("wgan-gp", G, D, opt(G), opt(D), WassersteinGPLoss(gp_weight=10.0), _noise(100), batch=64,
                  steps=6000, train_options={"d_steps": 5})


def _modern(device, width: int) -> Recipe:
    G, D = (m.to(device) for m in stylegan(64, latent_dim=128, width=max(1, width // 2)))
    opt = lambda model: adam(model.parameters(), device, lr=2e-3, betas=(0.0, 0.99))   # noqa: E731
    loss = Regularised(NonSaturatingLoss(), augment=DiffAugment("color,translation,cutout", p=0.2), r1=0.1, every=16)
    return Recipe("modern", G, D, opt(G), opt(D), loss, _noise(128), batch=64, steps=20000,
                  train_options={"ema": make_ema(G, 0.5 ** (64 / 10_000))})


RECIPES = {"dcgan64": _dcgan64, "wgan-gp": _wgan_gp, "modern": _modern}


def build(name: str, device="cpu", width: int = 64) -> Recipe:
    """The recipe called ``name`` with G and D of ``width`` (channels of G's last / D's first layer) on ``device``.
    Seed first (``seed_everything``) for the same initial weights."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}: choose one of {', '.join(map(repr, RECIPES))}.")
    if width < 1:
        raise ValueError(f"width={width}: the width is a number of channels, at least 1 (the lessons use 64).")
    return RECIPES[name](torch.device(device), width)
