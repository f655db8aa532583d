"""Lesson 02 in smoke mode: the data source it records (in the result and in the checkpoint's settings, which
resume compares) names the data set, so that a change of data set is noticed on resume; a second run with
RESUME = True only loads the finished run. The lesson's loss checks also take a loss written as train() calls it."""
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from gan_lib.checkpoints import load_checkpoint
from gan_lib.losses import GANLoss, NonSaturatingLoss
from gan_lib.teach.checks import check_discriminator_loss, check_generator_loss
from gan_lib.teach.lessons import run_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_mnist_mlp_gan.ipynb"


def test_the_data_source_recorded_is_the_data_sets_and_a_finished_run_is_only_loaded(tmp_path):
    parameters = {"STEPS": 4, "EXERCISE_STEPS": 2, "SAMPLE_EVERY": 2, "N_DIGITS": 200, "MNIST_DOWNLOAD": False,
                  "CHECKPOINT_DIR": str(tmp_path / "ckpt"), "TENSORBOARD_DIR": None}
    r = run_notebook(NOTEBOOK, smoke=True, parameters=parameters)
    assert r["source"].startswith("offline subset shipped with gan_lib"), r["source"]
    assert r["steps"] == 4 and r["resumed_from"] is None, r
    saved = load_checkpoint(tmp_path / "ckpt" / "last.pt")
    assert saved["checkpoint"]["settings"]["data"] == r["source"], saved["checkpoint"]
    assert saved["step"] == 4 and {"Grids", "Snapshot", "Watch"} <= set(saved["run"]["callbacks"])
    again = run_notebook(NOTEBOOK, smoke=True, parameters={**parameters, "RESUME": True})
    assert again["resumed_from"] == 4 and again["steps"] == 4, again
    assert again["train_seconds"] == r["train_seconds"] and again["fd"] == r["fd"]   # loaded, not trained again


def test_the_lesson_trains_through_the_loop_with_checkpoints_as_its_resume():
    code = {c.id: c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"}
    training = next(source for source in code.values() if "run = train(" in source)
    assert "until=STEPS" in training and "Checkpoints(CHECKPOINT_DIR, every=" in training
    assert "settings=settings, resume=RESUME" in training
    everything = "\n".join(code.values())
    for hand_written in ("load_checkpoint", "restore(", ".load("):                # no resume of its own
        assert hand_written not in everything, hand_written
    assert "inspect.getsource(training_step)" in everything                # the step, printed for comparison


class Smoothed(GANLoss):
    """Lesson 02's loss written as train() calls it."""
    real_label = 0.9

    def discriminator_loss(self, D, real, fake, scale=1.0):
        real_logits, fake_logits = D(real), D(fake)
        return (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, self.real_label))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))), {}

    def generator_loss(self, D, fake):
        logits = D(fake)
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)), {}


def bce_of_d(D, real, fake, scale=1.0):
    return NonSaturatingLoss().discriminator_loss(D, real, fake)[0]


class WithoutScale(Smoothed):
    def discriminator_loss(self, D, real, fake):
        return super().discriminator_loss(D, real, fake)


class TimesScale(Smoothed):
    def discriminator_loss(self, D, real, fake, scale=1.0):
        loss, stats = super().discriminator_loss(D, real, fake)
        return loss * scale, stats


def test_the_checks_take_a_gan_loss_at_its_own_real_label(capsys):
    check_discriminator_loss(Smoothed())
    check_generator_loss(Smoothed())
    check_discriminator_loss(NonSaturatingLoss())
    check_generator_loss(NonSaturatingLoss().generator_loss)                # a method of a GANLoss
    check_discriminator_loss(bce_of_d)                                      # a function of D, returning the loss
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "✓ discriminator_loss(D, real, fake, scale) matches gan_lib's BCE loss for real_label 0.9"
    assert len(lines) == 5 and all(line.startswith("✓ ") for line in lines), lines


@pytest.mark.parametrize("answer, sentence", [
    (WithoutScale(), "discriminator_loss takes no `scale`: train() calls it as discriminator_loss(D, real, fake, "
                     "scale)"),
    (TimesScale(), "With scale=8.0 the loss is "),
])
def test_a_gan_loss_that_train_would_call_wrongly_gets_one_sentence(answer, sentence):
    with pytest.raises(AssertionError) as caught:
        check_discriminator_loss(answer)
    assert str(caught.value).startswith(sentence) and "\n" not in str(caught.value), str(caught.value)
