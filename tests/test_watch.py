"""Divergence: NaN stops before anything NaN is saved; D winning and G collapsing are said once,
also across a resumed or continued run (what was said is part of the run's state)."""
import math
import warnings

import pytest
import torch
import torch.nn as nn

from gan_lib.checkpoints import Checkpoints, load_checkpoint
from gan_lib.losses import NonSaturatingLoss
from gan_lib.train import Callback, Options, train
from gan_lib.callbacks import TrainingDiverged, Watch

QUIET = Options(progress=False)


def _gan(seed=0, g_lr=2e-3, d_lr=2e-3):
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    return G, D, torch.optim.Adam(G.parameters(), lr=g_lr), torch.optim.Adam(D.parameters(), lr=d_lr)


def _batches():
    while True:
        yield torch.randn(32, 2) * 0.5 + torch.tensor([2.0, -1.0])


def _noise(n):
    return torch.randn(n, 4)


class NaNFrom(NonSaturatingLoss):
    """BCE that turns NaN from discriminator update number ``bad`` on (a learning rate blowing up, say)."""

    def __init__(self, bad):
        super().__init__()
        self.calls, self.bad = 0, bad

    def discriminator_loss(self, D, real, fake, scale=1.0):
        self.calls += 1
        loss, stats = super().discriminator_loss(D, real, fake, scale)
        return (loss * float("nan") if self.calls >= self.bad else loss), stats


def test_nan_stops_training_in_plain_words_and_saves_nothing_nan(tmp_path):
    G, D, opt_g, opt_d = _gan()
    with pytest.raises(TrainingDiverged, match=r"diverged at step 5: loss_d = nan.*lower the learning rates.*"
                                               r"Nothing NaN was saved"):
        train(G, D, opt_g, opt_d, _batches(), NaNFrom(bad=5), _noise, 10, options=QUIET,
              callbacks=[Checkpoints(tmp_path, every=2)])
    saved = load_checkpoint(tmp_path / "last.pt")
    assert saved["step"] == 4 and all(torch.isfinite(t).all() for t in saved["G"].values())


def test_non_finite_names_every_bad_number():
    assert Watch.non_finite(3, {"loss_d": 0.5, "loss_g": 1.0}) is None
    said = Watch.non_finite(7, {"loss_d": math.inf, "loss_g": 1.0, "D(x)": math.nan})
    assert said.startswith("training diverged at step 7: loss_d = inf, D(x) = nan.")


def test_a_discriminator_that_has_won_is_said_once():
    G, D, opt_g, opt_d = _gan(g_lr=0.0, d_lr=1e-2)            # G never learns: D wins within a few dozen steps
    with pytest.warns(UserWarning, match=r"D has won: for 30 steps D\(x\) ≈ (0.9\d|1.00).*label smoothing"):
        run = train(G, D, opt_g, opt_d, _batches(), NonSaturatingLoss(), _noise, 150, options=QUIET,
                    callbacks=[Watch(d_won_for=30)])
    assert [text[:10] for _, text in run.warnings] == ["D has won:"]      # once, not every step
    G, D, opt_g, opt_d = _gan()                                            # a fair fight: nothing said
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = train(G, D, opt_g, opt_d, _batches(), NonSaturatingLoss(), _noise, 150, options=QUIET,
                    callbacks=[Watch(d_won_for=30)])
    assert run.warnings == []


def _winning_d(until, folder=None, run=None, models=None):
    """Train a GAN whose D wins (G never learns) until step ``until``, with a new Watch as after a restart."""
    G, D, opt_g, opt_d = models or _gan(g_lr=0.0, d_lr=1e-2)
    callbacks = [Watch(d_won_for=30)] + ([Checkpoints(folder, every=20)] if folder else [])
    return train(G, D, opt_g, opt_d, _batches(), NonSaturatingLoss(), _noise, until, options=QUIET,
                 callbacks=callbacks, run=run)


def test_a_resumed_run_does_not_repeat_what_was_already_said(tmp_path):
    with pytest.warns(UserWarning, match="D has won"):
        first = _winning_d(100, tmp_path)
    assert [text[:10] for _, text in first.warnings] == ["D has won:"]
    with warnings.catch_warnings():                       # the next session: new models and a new Watch, the
        warnings.simplefilter("error")                    # run loaded; D still wins, but that was said at ~85
        run = _winning_d(140, tmp_path)
    assert run.resumed_from == 100 and run.step == 140
    assert run.warnings == first.warnings


def test_a_run_continued_in_the_same_session_does_not_repeat_what_was_already_said():
    models = _gan(g_lr=0.0, d_lr=1e-2)
    with pytest.warns(UserWarning, match="D has won"):
        run = _winning_d(100, models=models)
    said = list(run.warnings)
    with warnings.catch_warnings():                       # a second call on the same Run, with a new Watch
        warnings.simplefilter("error")
        run = _winning_d(140, run=run, models=models)
    assert run.step == 140 and run.warnings == said


def test_a_collapsed_generator_is_said_once():
    G, D, opt_g, opt_d = _gan(g_lr=0.0)
    with torch.no_grad():
        G[2].weight.zero_()                                   # every z gives the same point: total collapse
    with pytest.warns(UserWarning, match="G has collapsed: its images differ from each other only 0%"):
        run = train(G, D, opt_g, opt_d, _batches(), NonSaturatingLoss(), _noise, 12, options=QUIET,
                    callbacks=[Watch(every=2, collapsed_for=3)])
    assert [step for step, _ in run.warnings] == [6]          # the third low check in a row, said once
    G, D, opt_g, opt_d = _gan()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(G, D, opt_g, opt_d, _batches(), NonSaturatingLoss(), _noise, 12, options=QUIET,
              callbacks=[Watch(every=2, collapsed_for=3)])
    with warnings.catch_warnings():                            # collapse_below=0: that check never fires
        warnings.simplefilter("error")
        G, D, opt_g, opt_d = _gan(g_lr=0.0)
        with torch.no_grad():
            G[2].weight.zero_()
        run = train(G, D, opt_g, opt_d, _batches(), NonSaturatingLoss(), _noise, 12, options=QUIET,
                    callbacks=[Watch(every=2, collapsed_for=3, collapse_below=0.0)])
    assert run.warnings == []


def _diverge(folder, every=2):
    """Train 10 steps whose D loss turns NaN at step 5, checkpointed in ``folder``; return what is raised."""
    with pytest.raises(TrainingDiverged) as info:
        train(*_gan(), _batches(), NaNFrom(bad=5), _noise, 10, options=QUIET,
              callbacks=[Checkpoints(folder, every=every, resume=False)])
    return str(info.value)


def test_the_last_checkpoint_is_called_good_only_when_it_is(tmp_path):
    said = _diverge(tmp_path / "none", every=100)                         # no checkpoint saved before step 5
    assert "still good" not in said and said.endswith(f"There is no checkpoint to go back to: none was saved in "
                                                      f"{tmp_path / 'none'} before step 5.")
    Checkpoints(tmp_path / "other").save({"step": 50, "G": {}, "D": {}})  # another run's, in the folder
    said = _diverge(tmp_path / "other", every=100)
    assert "still good" not in said and "the one in" in said and "is of step 50, not from before step 5" in said
    said = _diverge(tmp_path / "good")
    assert said.endswith(f"Nothing NaN was saved: the last checkpoint in {tmp_path / 'good'} (step 4) is still good.")


class Poison(Callback):
    """As if the update of step 4 left NaN in D (its losses were finite)."""

    def on_step(self, loop):
        if loop.run.step == 4:
            with torch.no_grad():
                loop.D[0].weight.fill_(float("nan"))


def test_a_checkpoint_that_already_holds_nan_weights_is_not_called_good(tmp_path):
    G, D, opt_g, opt_d = _gan()
    with pytest.raises(TrainingDiverged) as info:
        train(G, D, opt_g, opt_d, _batches(), NonSaturatingLoss(), _noise, 10, options=QUIET,
              callbacks=[Checkpoints(tmp_path, every=2), Poison()])
    said = str(info.value)
    assert said.startswith("training diverged at step 5:") and "still good" not in said, said
    assert said.endswith(f"the one in {tmp_path} (step 4) already holds NaN/inf weights (D.0.weight), so start "
                         f"again after the fix."), said
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 4


def _nan_data(at_batch):
    for i in range(1, 1000):
        batch = torch.randn(32, 2) * 0.5 + torch.tensor([2.0, -1.0])
        if i == at_batch:
            batch[3, 1] = float("nan")
        yield batch


def test_nan_in_the_data_is_blamed_on_the_data_not_the_learning_rate(tmp_path):
    G, D, opt_g, opt_d = _gan()
    with pytest.raises(TrainingDiverged) as info:
        train(G, D, opt_g, opt_d, _nan_data(at_batch=3), NonSaturatingLoss(), _noise, 10, options=QUIET)
    said = str(info.value)
    assert said.startswith("training diverged at step 3: the real batch itself holds 1 NaN and 0 inf value(s) "
                           "of 64, so loss_d = nan"), said
    assert "The data is at fault, not the learning rate." in said and "lower the learning rates" not in said
    G, D, opt_g, opt_d = _gan()                                  # d_steps=2: the first of the step's batches
    with pytest.raises(TrainingDiverged, match="diverged at step 2: the real batch itself holds 1 NaN"):
        train(G, D, opt_g, opt_d, _nan_data(at_batch=3), NonSaturatingLoss(), _noise, 10,
              options=Options(d_steps=2, progress=False))
    finite = Watch.non_finite(4, {"loss_d": math.nan}, [torch.zeros(2, 2)])  # finite data: the usual causes
    assert "lower the learning rates" in finite and "real batch" not in finite
