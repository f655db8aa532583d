"""The recipes of lessons 03 (``dcgan``), 04 (``wgan``) and 05 (``modern``) by name, defaulting to full GPU mode.

    recipe = build("dcgan", device, width=64)           # print(recipe) shows what it sets
    run = train(recipe.G, recipe.D, recipe.opt_g, recipe.opt_d, batches, recipe.loss, recipe.noise,
                until=recipe.steps, options=recipe.options, callbacks=recipe.callbacks())
"""
import inspect
from dataclasses import dataclass, field

import torch
from torch import nn

from gan_lib.callbacks import EMA, ema_decay
from gan_lib.losses import (DiffAugment, GANLoss, HingeLoss, NonSaturatingLoss, Regularised, WassersteinGPLoss,
                            WassersteinLoss)
from gan_lib.models import dcgan as dcgan_models, first_attempt_gan, gaussian_noise
from gan_lib.stylegan import stylegan
from gan_lib.train import Options


def adam(params, device, lr: float = 2e-4, betas=(0.5, 0.999)) -> torch.optim.Adam:
    """Adam with DCGAN's defaults, fused into one kernel per step on a GPU."""
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=torch.device(device).type == "cuda")


@dataclass
class Recipe:
    """What one run needs besides the images; G and D are on the device it was built for."""
    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    loss: GANLoss
    batch: int                             # images per step (all ranks together under DDP)
    steps: int                             # full-mode steps: train(until=recipe.steps)
    options: Options = field(default_factory=Options)
    ema: EMA | None = None                 # sample from recipe.ema.module when there is one
    latent_dim: int = 100
    image_size: int = 64
    name: str = ""                         # build() sets the name and the settings, which key the checkpoints
    settings: dict = field(default_factory=dict)

    def noise(self, n: int, generator=None) -> torch.Tensor:
        return gaussian_noise(n, self.latent_dim, generator=generator)        # (n, latent_dim, 1, 1) on the CPU

    def callbacks(self) -> list:                      # what the recipe needs (its EMA); add grids, checkpoints...
        return [self.ema] if self.ema is not None else []

    @property
    def sampler(self) -> nn.Module:                   # the EMA's averaged G when there is one, else G
        return self.ema.module if self.ema is not None else self.G

    def __str__(self) -> str:
        return f"{self.name}: " + ", ".join(f"{key}={value!r}" for key, value in self.settings.items())


def dcgan(device="cpu", image_size: int = 64, width: int = 64, batch: int = 128, steps: int = 6000,
          lr_g: float = 2e-4, lr_d: float = 2e-4, d_steps: int = 1, ema_half_life: float | None = 10_000,
          first_attempt: bool = False, latent_dim: int = 100, augment_p: float = 0.0,
          ema_rampup: float | None = None) -> Recipe:
    """Lesson 03's DCGAN, two Adams, BCE and an EMA of G; ``lr_d``, ``d_steps``, ``first_attempt`` are failure demos."""
    G, D = (m.to(device) for m in (first_attempt_gan(image_size) if first_attempt else
                                   dcgan_models(image_size, latent_dim, g_width=width, d_width=width)))
    loss = Regularised(NonSaturatingLoss(), augment=DiffAugment(p=augment_p)) if augment_p else NonSaturatingLoss()
    ema = None if ema_half_life is None else EMA(G, ema_decay(ema_half_life, batch), ema_rampup)
    return Recipe(G, D, adam(G.parameters(), device, lr_g), adam(D.parameters(), device, lr_d), loss, batch, steps,
                  Options(d_steps=d_steps), ema, latent_dim, image_size)


WGAN_VARIANTS = ("GAN (BCE)", "GAN + grad-norm clip", "WGAN (clip 0.01)", "WGAN-GP", "WGAN (HW6: clip 1.0)")


def wgan(device="cpu", variant: str = "WGAN-GP", image_size: int = 64, width: int = 64, batch: int = 64,
         steps: int = 6000, n_critic: int = 5, critic_norm: str = "layer", record_grad_norms: bool = False) -> Recipe:
    """Lesson 04's DCGAN pair trained as ``variant``; a Wasserstein critic takes ``n_critic`` steps per G step."""
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
    return Recipe(G, D, opt(G), opt(D), loss, batch, steps, options, image_size=image_size)


INGREDIENTS = ("+ EMA", "+ layer-norm D", "+ R1", "+ DiffAugment", "+ hinge", "+ StyleGAN2 G", "+ residual D",
               "+ StyleGAN2's Adam")
LESSON_05_ROWS = ("DCGAN",) + INGREDIENTS[:4] + INGREDIENTS[5:]      # one ingredient per row; hinge is optional


def modern(device="cpu", ingredients: tuple = LESSON_05_ROWS[1:], image_size: int = 64, latent_dim: int = 128,
           dcgan_width: int = 64, style_width: int = 32, batch: int = 64, steps: int = 20_000,
           ema_half_life: float = 10_000, r1_gamma: float = 0.1, r1_every: int = 16, augment_p: float = 0.2,
           ema_rampup: float | None = None) -> Recipe:
    """Lesson 05: lesson 03's DCGAN plus ``ingredients`` (some of ``INGREDIENTS``), each changing one thing."""
    if unknown := [name for name in ingredients if name not in INGREDIENTS]:
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
                       augment=DiffAugment(p=augment_p) if "+ DiffAugment" in ingredients else None,
                       r1=r1_gamma if "+ R1" in ingredients else 0.0, every=r1_every)
    ema = EMA(G, ema_decay(ema_half_life, batch), ema_rampup) if "+ EMA" in ingredients else None
    return Recipe(G, D, opt(G), opt(D), loss, batch, steps, ema=ema, latent_dim=latent_dim, image_size=image_size)


RECIPES = {"dcgan": dcgan, "wgan": wgan, "modern": modern}


def build(name: str, device="cpu", **values) -> Recipe:
    """The recipe ``name`` on ``device``, ``values`` replacing its defaults; seed first for the same weights."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}: choose one of {', '.join(map(repr, RECIPES))}.")
    defaults = {key: p.default for key, p in inspect.signature(RECIPES[name]).parameters.items() if key != "device"}
    if unknown := sorted(set(values) - set(defaults)):
        raise ValueError(f"recipe {name!r} has no setting {unknown}: its settings are {', '.join(sorted(defaults))}.")
    if values.get("width", 1) < 1:
        raise ValueError(f"width={values['width']}: the width is a number of channels, at least 1 "
                         f"(the lessons use 64).")
    recipe = RECIPES[name](torch.device(device), **values)
    recipe.name = name
    settings = {"recipe": name, **defaults, **values}   # but steps: a longer run continues a shorter one
    recipe.settings = {key: list(v) if isinstance(v, tuple) else v for key, v in settings.items() if key != "steps"}
    return recipe

