"""gan_lib.recipes: every recipe of lessons 03-05 builds, says what it sets, refuses what it does not know in one
sentence, is keyed by settings without the step count, and trains."""
import dataclasses
import itertools
import json
import math
import re

import pytest
import torch

from gan_lib import seed_everything
from gan_lib.callbacks import EMA
from gan_lib.checkpoints import Checkpoints
from gan_lib.data import ImageBatches
from gan_lib.losses import (DiffAugment, GANLoss, HingeLoss, NonSaturatingLoss, Regularised, WassersteinGPLoss,
                            WassersteinLoss)
from gan_lib.models import DCGANGenerator
from gan_lib.recipes import INGREDIENTS, LESSON_05_ROWS, RECIPES, WGAN_VARIANTS, Recipe, build
from gan_lib.stylegan import ResidualDiscriminator, StyleGenerator
from gan_lib.train import Options, train

TINY = {"dcgan": dict(width=4), "wgan": dict(width=4), "modern": dict(dcgan_width=4, style_width=4)}


def _one_sentence(message):
    assert message.endswith(".") and not re.search(r"[.:]\s+[A-Z]", message), message


def _check_recipe(r: Recipe, name: str):
    assert isinstance(r, Recipe) and r.name == name and r.settings["recipe"] == name
    assert isinstance(r.loss, GANLoss) and isinstance(r.options, Options)
    assert r.callbacks() == ([r.ema] if r.ema is not None else [])
    assert r.sampler is (r.ema.module if r.ema is not None else r.G)
    assert "steps" not in r.settings and "device" not in r.settings
    assert json.loads(json.dumps(r.settings)) == r.settings                    # plain values: a checkpoint's key
    Checkpoints("unused", settings=r.settings)                                # accepted as settings
    shown = str(r)
    assert shown.startswith(f"{name}: ")
    for key, value in r.settings.items():
        assert f"{key}={value!r}" in shown, (key, shown)
    z = r.noise(2)
    assert z.shape == (2, r.settings.get("latent_dim", 100), 1, 1) and z.device.type == "cpu"
    with torch.no_grad():
        assert r.G(z).shape == (2, 3, r.image_size, r.image_size)


def test_dcgan_builds_as_lesson_03_sets_it_and_for_its_failure_demos():
    r = build("dcgan", **TINY["dcgan"])
    _check_recipe(r, "dcgan")
    assert isinstance(r.G, DCGANGenerator) and type(r.loss) is NonSaturatingLoss
    assert r.opt_g.defaults["lr"] == r.opt_d.defaults["lr"] == 2e-4 and r.opt_g.defaults["betas"] == (0.5, 0.999)
    assert isinstance(r.ema, EMA) and r.ema.decay == 0.5 ** (128 / 10_000) and r.batch == 128 and r.steps == 6000
    assert r.settings == {"recipe": "dcgan", "image_size": 64, "width": 4, "batch": 128, "lr_g": 2e-4, "lr_d": 2e-4,
                          "d_steps": 1, "ema_half_life": 10_000, "first_attempt": False, "latent_dim": 100,
                          "augment_p": 0.0, "ema_rampup": None}
    demo = build("dcgan", width=4, lr_d=1e-3, d_steps=3, ema_half_life=None, first_attempt=True, batch=16)
    _check_recipe(demo, "dcgan")
    assert demo.ema is None and demo.options.d_steps == 3 and demo.opt_d.defaults["lr"] == 1e-3 and demo.batch == 16
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in demo.G.modules())        # the first attempt: no BN
    assert "first_attempt=True" in str(demo) and "ema_half_life=None" in str(demo)


def test_lesson_03s_cpu_budget_recipe_trains_as_the_measured_lesson_05_row():
    """dcgan(augment_p=0.3) is the row benchmarks/quality_curve.py measured ("+ EMA" "+ DiffAugment" on lesson 03's
    DCGAN): the same seeded weights after three steps, bit for bit."""
    pixels = torch.randint(0, 256, (8, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    trained = []
    for name, values in [("dcgan", dict(width=4, augment_p=0.3)),
                         ("modern", dict(dcgan_width=4, latent_dim=100, augment_p=0.3,
                                         ingredients=("+ EMA", "+ DiffAugment")))]:
        seed_everything(0)
        r = build(name, "cpu", batch=4, **values)
        assert isinstance(r.loss, Regularised) and r.loss.augment.p == 0.3 and r.loss.r1 == 0
        train(r.G, r.D, r.opt_g, r.opt_d, ImageBatches(pixels, r.batch, seed=0), r.loss, r.noise, 3,
              options=dataclasses.replace(r.options, progress=False), callbacks=r.callbacks())
        trained.append(r.sampler.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(trained[0].values(), trained[1].values()))
    assert type(build("dcgan", width=4).loss) is NonSaturatingLoss                       # p 0: no wrapper


@pytest.mark.parametrize("variant", WGAN_VARIANTS)
def test_every_wgan_variant_builds(variant):
    r = build("wgan", variant=variant, **TINY["wgan"])
    _check_recipe(r, "wgan")
    assert r.settings["variant"] == variant and f"variant={variant!r}" in str(r) and r.ema is None
    expected = {"GAN (BCE)": (NonSaturatingLoss, 1, None, torch.optim.Adam),
                "GAN + grad-norm clip": (NonSaturatingLoss, 1, 1.0, torch.optim.Adam),
                "WGAN (clip 0.01)": (WassersteinLoss, 5, None, torch.optim.RMSprop),
                "WGAN-GP": (WassersteinGPLoss, 5, None, torch.optim.Adam),
                "WGAN (HW6: clip 1.0)": (WassersteinLoss, 2, None, torch.optim.RMSprop)}[variant]
    assert (type(r.loss), r.options.d_steps, r.options.grad_clip, type(r.opt_d)) == expected
    batch_norm_in_d = any(isinstance(m, torch.nn.BatchNorm2d) for m in r.D.modules())
    assert batch_norm_in_d == variant.startswith("GAN")                        # no batch norm in a critic
    if isinstance(r.loss, WassersteinLoss) and not isinstance(r.loss, WassersteinGPLoss):
        assert r.loss.clip == (0.01 if "0.01" in variant else 1.0)
    assert build("wgan", variant=variant, width=4, n_critic=3).options.d_steps == (3 if expected[1] == 5 else
                                                                                    expected[1])
    assert build("wgan", variant=variant, width=4, record_grad_norms=True).options.record_grad_norms


INGREDIENT_SETS = [(), *[(name,) for name in INGREDIENTS], LESSON_05_ROWS[1:], INGREDIENTS]


@pytest.mark.parametrize("ingredients", INGREDIENT_SETS, ids=lambda s: "+".join(n[2:5] for n in s) or "none")
def test_every_modern_ingredient_set_builds(ingredients):
    r = build("modern", ingredients=ingredients, **TINY["modern"])
    _check_recipe(r, "modern")
    assert r.settings["ingredients"] == list(ingredients)                      # a list: what JSON gives back
    assert isinstance(r.loss, Regularised)
    assert isinstance(r.loss.base, HingeLoss if "+ hinge" in ingredients else NonSaturatingLoss)
    assert (r.loss.r1 > 0) == ("+ R1" in ingredients)
    assert isinstance(r.loss.augment, DiffAugment) == ("+ DiffAugment" in ingredients)
    assert (r.ema is not None) == ("+ EMA" in ingredients)
    assert isinstance(r.G, StyleGenerator) == ("+ StyleGAN2 G" in ingredients)        # one ingredient, one change
    assert isinstance(r.D, ResidualDiscriminator) == ("+ residual D" in ingredients)
    layer_norm = any(isinstance(m, torch.nn.GroupNorm) for m in r.D.modules())
    assert layer_norm == ("+ layer-norm D" in ingredients and "+ residual D" not in ingredients)
    adam = "+ StyleGAN2's Adam" in ingredients
    for opt in (r.opt_g, r.opt_d):
        assert (opt.defaults["lr"], opt.defaults["betas"]) == ((2e-3, (0.0, 0.99)) if adam else (2e-4, (0.5, 0.999)))


def test_the_default_modern_recipe_is_lesson_05s_full_row():
    r = build("modern", **TINY["modern"])
    assert r.settings["ingredients"] == ["+ EMA", "+ layer-norm D", "+ R1", "+ DiffAugment", "+ StyleGAN2 G",
                                         "+ residual D", "+ StyleGAN2's Adam"]
    assert r.steps == 20_000 and r.batch == 64 and r.settings["latent_dim"] == 128
    assert r.ema.rampup is None and r.settings["ema_rampup"] is None
    ramped = build("modern", ingredients=["+ EMA"], ema_rampup=0.05, **TINY["modern"])      # lesson 05's CPU budget
    assert ramped.ema.rampup == 0.05 and ramped.ema.decay == r.ema.decay and ramped.settings["ema_rampup"] == 0.05


def test_unknown_names_and_values_are_refused_in_one_sentence():
    cases = [(lambda: build("dcgan64"), "unknown recipe 'dcgan64': choose one of 'dcgan', 'wgan', 'modern'."),
             (lambda: build("dcgan", lr=1e-3), "recipe 'dcgan' has no setting ['lr']: its settings are augment_p, batch, "
                                               "d_steps, ema_half_life, ema_rampup, first_attempt, image_size, latent_dim, "
                                               "lr_d, lr_g, steps, width."),
             (lambda: build("dcgan", width=0), "width=0: the width is a number of channels, at least 1 (the lessons "
                                               "use 64)."),
             (lambda: build("wgan", variant="WGAN-LP"), "unknown variant 'WGAN-LP': choose one of 'GAN (BCE)', "
                                                        "'GAN + grad-norm clip', 'WGAN (clip 0.01)', 'WGAN-GP', "
                                                        "'WGAN (HW6: clip 1.0)'."),
             (lambda: build("modern", ingredients=("+ EMA", "+ dropout")), None)]
    for make, said in cases:
        with pytest.raises(ValueError) as info:
            make()
        message = str(info.value)
        if said is not None:
            assert message == said
        _one_sentence(message)
    assert str(info.value).startswith("unknown ingredient(s) ['+ dropout']: choose from '+ EMA', '+ layer-norm D'")
    assert set(RECIPES) == {"dcgan", "wgan", "modern"}


def test_settings_leave_out_the_step_count_so_a_longer_run_continues_a_shorter_one():
    short, longer = build("dcgan", width=4, steps=10), build("dcgan", width=4, steps=10_000)
    assert (short.steps, longer.steps) == (10, 10_000) and short.settings == longer.settings
    assert build("dcgan", width=8).settings != short.settings                  # any other value keys another run
    assert build("wgan", variant="WGAN-GP", width=4).settings != build("wgan", variant="GAN (BCE)", width=4).settings


@pytest.mark.parametrize("name, values", [("dcgan", TINY["dcgan"]),
                                          ("wgan", dict(TINY["wgan"], variant="WGAN-GP", n_critic=2)),
                                          ("modern", dict(TINY["modern"], ingredients=INGREDIENTS, r1_every=1))],
                         ids=["dcgan", "wgan-gp", "modern-all"])
def test_a_recipe_trains_two_steps_on_tiny_data(tmp_path, name, values):
    seed_everything(0)
    r = build(name, "cpu", batch=4, **values)
    pixels = torch.randint(0, 256, (8, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    before = [p.detach().clone() for p in r.G.parameters()]
    run = train(r.G, r.D, r.opt_g, r.opt_d, ImageBatches(pixels, r.batch, seed=0, flip=True), r.loss, r.noise, 2,
                options=dataclasses.replace(r.options, progress=False),
                callbacks=[*r.callbacks(), Checkpoints(tmp_path, every=100, settings=r.settings)])
    assert run.step == 2 and len(run.history["loss_d"]) == 2
    assert all(math.isfinite(v) for v in itertools.chain(run.history["loss_d"], run.history["loss_g"]))
    assert any(not torch.equal(a, b) for a, b in zip(before, r.G.parameters()))            # G did learn
    if r.ema is not None:
        assert int(r.ema.model.n_averaged) == 2
    seed_everything(1)                                                         # the same recipe resumes it
    again = build(name, "cpu", batch=4, **values)
    resumed = train(again.G, again.D, again.opt_g, again.opt_d, ImageBatches(pixels, again.batch, seed=0),
                    again.loss, again.noise, 2, options=dataclasses.replace(again.options, progress=False),
                    callbacks=[*again.callbacks(), Checkpoints(tmp_path, every=100, settings=again.settings)])
    assert resumed.resumed_from == 2
    assert all(torch.equal(a, b) for a, b in zip(r.sampler.state_dict().values(), again.sampler.state_dict().values()))
