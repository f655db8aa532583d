"""Every recipe the lessons, the benchmarks and the trainer train, by name.

    recipe = build("dcgan", device, width=64)           # lesson 03's DCGAN; print(recipe) shows what it sets
    run = train(recipe.G, recipe.D, recipe.opt_g, recipe.opt_d, batches, recipe.loss, recipe.noise,
                until=recipe.steps, options=recipe.options, callbacks=recipe.callbacks())

``dcgan`` is lesson 03, ``wgan`` lesson 04 (``WGAN_VARIANTS``), ``modern`` lesson 05 (``INGREDIENTS``); the defaults
are the lesson's full mode on a GPU. ``recipe.settings`` keys its checkpoints: ``Checkpoints(folder, settings=...)``.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from gan_lib.augment import DiffAugment
from gan_lib.callbacks import EMA, ema_decay
from gan_lib.losses import GANLoss, HingeLoss, NonSaturatingLoss, Regularised, WassersteinGPLoss, WassersteinLoss
from gan_lib.models import dcgan as dcgan_models, first_attempt_gan, gaussian_noise
from gan_lib.stylegan import stylegan
from gan_lib.train import Options


def adam(params, device, lr: float = 2e-4, betas=(0.5, 0.999)) -> torch.optim.Adam:
    """Adam with DCGAN's defaults; one fused kernel per step on a GPU (``fused=True``) instead of one per tensor."""
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=torch.device(device).type == "cuda")


@dataclass
class Recipe:
    """What one run needs besides the images; G and D are on the device it was built for."""
    name: str
    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    loss: GANLoss
    noise: Callable[..., torch.Tensor]     # noise(n, generator=None) -> (n, latent_dim, 1, 1) on the CPU
    batch: int                             # images per step (all ranks together under DDP)
    steps: int                             # full-mode steps: train(until=recipe.steps)
    options: Options = field(default_factory=Options)
    ema: EMA | None = None                 # sample from recipe.ema.module when there is one
    settings: dict = field(default_factory=dict)
    image_size: int = 64

    def callbacks(self) -> list:                      # what the recipe needs (its EMA); add grids, checkpoints...
        return [self.ema] if self.ema is not None else []

    @property
    def sampler(self) -> nn.Module:                   # the EMA's averaged G when there is one, else G
        return self.ema.module if self.ema is not None else self.G

    def __str__(self) -> str:
        shown = ", ".join(f"{key}={value!r}" for key, value in self.settings.items())
        return f"{self.name}: {shown}"


def _recipe(builder, values: dict, G, D, opt_g, opt_d, loss: GANLoss, latent_dim: int = 100,
            options: Options | None = None, ema_half_life: float | None = None,
            ema_rampup: float | None = None) -> Recipe:
    """``builder``'s Recipe from its arguments ``values``; all but ``device`` and ``steps`` are its settings."""
    name, keys = builder.__name__, [k for k in inspect.signature(builder).parameters if k not in ("device", "steps")]
    ema = None if ema_half_life is None else EMA(G, ema_decay(ema_half_life, values["batch"]), ema_rampup)
    noise = lambda n, generator=None: gaussian_noise(n, latent_dim, generator=generator)   # noqa: E731 (n, z, 1, 1)
    return Recipe(name, G, D, opt_g, opt_d, loss, noise, values["batch"], values["steps"], options or Options(), ema,
                  {"recipe": name, **{k: values[k] for k in keys}}, values["image_size"])


def dcgan(device="cpu", image_size: int = 64, width: int = 64, batch: int = 128, steps: int = 6000,
          lr_g: float = 2e-4, lr_d: float = 2e-4, d_steps: int = 1, ema_half_life: float | None = 10_000,
          first_attempt: bool = False, latent_dim: int = 100, augment_p: float = 0.0,
          ema_rampup: float | None = None) -> Recipe:
    """Lesson 03: DCGAN, Adam (0.5, 0.999), BCE; an EMA of G with ``ema_half_life`` images (None: no EMA) and
    ``ema_rampup`` (see ``EMA``). ``lr_d``, ``d_steps`` and ``first_attempt`` (no batch norm) are the lesson's
    failure demos; ``augment_p`` > 0 shows D DiffAugment-ed images (the CPU budget's longer runs need it)."""
    G, D = (m.to(device) for m in (first_attempt_gan(image_size) if first_attempt else
                                   dcgan_models(image_size, latent_dim, g_width=width, d_width=width)))
    loss = Regularised(NonSaturatingLoss(), augment=DiffAugment(p=augment_p)) if augment_p else NonSaturatingLoss()
    return _recipe(dcgan, locals(), G, D, adam(G.parameters(), device, lr_g), adam(D.parameters(), device, lr_d),
                   loss, latent_dim, Options(d_steps=d_steps), ema_half_life, ema_rampup)


WGAN_VARIANTS = ("GAN (BCE)", "GAN + grad-norm clip", "WGAN (clip 0.01)", "WGAN-GP", "WGAN (HW6: clip 1.0)")


def wgan(device="cpu", variant: str = "WGAN-GP", image_size: int = 64, width: int = 64, batch: int = 64,
         steps: int = 6000, n_critic: int = 5, critic_norm: str = "layer", record_grad_norms: bool = False) -> Recipe:
    """Lesson 04: a DCGAN pair trained as ``variant``. The critic of the Wasserstein variants uses ``critic_norm``
    (no batch norm under a per-sample penalty) and takes ``n_critic`` steps per G step (HW6's clip 1.0: 2)."""
    if variant not in WGAN_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: choose one of {', '.join(map(repr, WGAN_VARIANTS))}.")
    wasserstein = variant.startswith("WGAN")
    G, D = (m.to(device) for m in dcgan_models(image_size, 100, g_width=width, d_width=width,
                                                d_norm=critic_norm if wasserstein else "batch"))
    if variant.startswith("GAN"):
        opt, loss = lambda m: adam(m.parameters(), device), NonSaturatingLoss()
    elif variant == "WGAN-GP":
        opt, loss = lambda m: adam(m.parameters(), device, 1e-4, (0.0, 0.9)), WassersteinGPLoss(gp_weight=10.0)
    else:
        clip, lr = (0.01, 5e-5) if variant == "WGAN (clip 0.01)" else (1.0, 1e-4)
        opt, loss = lambda m: torch.optim.RMSprop(m.parameters(), lr=lr), WassersteinLoss(clip=clip)
    options = Options(d_steps=(2 if "HW6" in variant else n_critic) if wasserstein else 1,
                      grad_clip=1.0 if variant == "GAN + grad-norm clip" else None,
                      record_grad_norms=record_grad_norms)
    return _recipe(wgan, locals(), G, D, opt(G), opt(D), loss, options=options)


INGREDIENTS = ("+ EMA", "+ layer-norm D", "+ R1", "+ DiffAugment", "+ hinge", "+ StyleGAN2 G", "+ residual D",
               "+ StyleGAN2's Adam")
LESSON_05_ROWS = ("DCGAN",) + INGREDIENTS[:4] + INGREDIENTS[5:]      # one ingredient per row; hinge is optional


def modern(device="cpu", ingredients: tuple = LESSON_05_ROWS[1:], image_size: int = 64, latent_dim: int = 128,
           dcgan_width: int = 64, style_width: int = 32, batch: int = 64, steps: int = 20_000,
           ema_half_life: float = 10_000, r1_gamma: float = 0.1, r1_every: int = 16, augment_p: float = 0.2,
           ema_rampup: float | None = None) -> Recipe:
    """Lesson 05: lesson 03's DCGAN plus each of ``ingredients`` (a subset of ``INGREDIENTS``), each changing one
    thing: the StyleGAN2-style G or residual D replaces one network; StyleGAN2's Adam is 2e-3 with betas (0, 0.99).
    "+ EMA" averages G with ``ema_half_life`` images and ``ema_rampup`` (see ``EMA``; None: none)."""
    unknown = [name for name in ingredients if name not in INGREDIENTS]
    if unknown:
        raise ValueError(f"unknown ingredient(s) {unknown}: choose from {', '.join(map(repr, INGREDIENTS))}.")
    dcgan_G, dcgan_D = dcgan_models(image_size, latent_dim, dcgan_width, dcgan_width,
                                    d_norm="layer" if "+ layer-norm D" in ingredients else "batch")
    style_G, style_D = (stylegan(image_size, latent_dim, style_width)              # built only when a row uses it
                        if {"+ StyleGAN2 G", "+ residual D"} & set(ingredients) else (None, None))
    G = (style_G if "+ StyleGAN2 G" in ingredients else dcgan_G).to(device)
    D = (style_D if "+ residual D" in ingredients else dcgan_D).to(device)
    lr, betas = (2e-3, (0.0, 0.99)) if "+ StyleGAN2's Adam" in ingredients else (2e-4, (0.5, 0.999))
    opt = lambda m: adam(m.parameters(), device, lr, betas)                    # noqa: E731
    loss = Regularised(HingeLoss() if "+ hinge" in ingredients else NonSaturatingLoss(),
                       r1=r1_gamma if "+ R1" in ingredients else 0.0, every=r1_every,
                       augment=DiffAugment(p=augment_p)
                       if "+ DiffAugment" in ingredients else None)
    half_life = ema_half_life if "+ EMA" in ingredients else None
    ingredients = list(ingredients)                                              # as settings: JSON
    return _recipe(modern, locals(), G, D, opt(G), opt(D), loss, latent_dim, ema_half_life=half_life,
                   ema_rampup=ema_rampup)


RECIPES = {"dcgan": dcgan, "wgan": wgan, "modern": modern}


def build(name: str, device="cpu", **values) -> Recipe:
    """The recipe ``name`` on ``device``, ``values`` replacing its defaults (``width=32``); seed first for the same
    initial weights."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}: choose one of {', '.join(map(repr, RECIPES))}.")
    known = set(inspect.signature(RECIPES[name]).parameters) - {"device"}
    if set(values) - known:
        raise ValueError(f"recipe {name!r} has no setting {sorted(set(values) - known)}: its settings are "
                         f"{', '.join(sorted(known))}.")
    if values.get("width", 1) < 1:
        raise ValueError(f"width={values['width']}: the width is a number of channels, at least 1 (the lessons "
                         f"use 64).")
    return RECIPES[name](torch.device(device), **values)

