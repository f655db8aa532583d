"""The callbacks around the steps: EMA, Grids, Evaluate (+ keep_best_by), Budget, Checkpoints' every_seconds and
remember()."""
import time

import pytest
import torch
import torch.nn as nn

from gan_lib.callbacks import EMA, Budget, Evaluate, Grids, ema_decay
from gan_lib.checkpoints import Checkpoints, load_checkpoint
from gan_lib.losses import NonSaturatingLoss
from gan_lib.train import Callback, Options, train
from gan_lib.explore import sample

QUIET = Options(progress=False)


def _parts(seed=0):
    """A small pair with batch norm in G (buffers the EMA averages too) and its optimisers."""
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
    D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    return G, D, torch.optim.Adam(G.parameters(), lr=2e-3), torch.optim.Adam(D.parameters(), lr=2e-3)


def _batches():
    while True:
        yield torch.randn(32, 2) * 0.1 + torch.tensor([2.0, -1.0])                    # (32, 2)


def _noise(n):
    return torch.randn(n, 4)


def _train(parts, until, callbacks=(), run=None):
    return train(*parts, _batches(), NonSaturatingLoss(), _noise, until, options=QUIET, callbacks=callbacks, run=run)


class Sleepy(Callback):
    """Spends ``seconds`` in every step (training time: it is not paused)."""

    def __init__(self, seconds):
        self.seconds = seconds

    def on_step(self, loop):
        time.sleep(self.seconds)


# --- EMA ---

def test_ema_follows_g_lags_behind_it_and_averages_the_buffers(tmp_path):
    parts = _parts()
    G = parts[0]
    ema = EMA(G, decay=0.9)
    start = [p.detach().clone() for p in G.parameters()]
    _train(parts, 20, [ema, Checkpoints(tmp_path, every=100)])
    for p0, p, q in zip(start, G.parameters(), ema.module.parameters()):
        assert not torch.equal(q, p0) and not torch.equal(q, p)      # moved, but lags behind G
    assert int(ema.model.n_averaged) == 20
    bn, bn_ema = G[1], ema.module[1]
    assert not torch.equal(bn.running_mean, bn_ema.running_mean) and bn_ema.running_mean.abs().sum() > 0
    saved = load_checkpoint(tmp_path / "last.pt")["run"]["callbacks"]["EMA"]
    assert all(torch.equal(saved[k], v) for k, v in ema.state_dict().items())
    for decay in (0.0, 1.0):
        with pytest.raises(ValueError, match=f"decay={decay}: an EMA decay lies strictly between 0 and 1"):
            EMA(G, decay=decay)


class Snapshots(Callback):
    """G's floating-point weights and buffers after every step."""

    def __init__(self, G):
        self.G, self.kept = G, []

    def on_step(self, loop):
        self.kept.append([t.detach().clone() for t in [*self.G.parameters(), *self.G.buffers()]
                          if t.is_floating_point()])


def test_a_ramped_ema_caps_its_half_life_at_rampup_times_the_images_seen_then_uses_the_decay():
    parts = _parts()
    G = parts[0]
    snapshots, ramped, plain = Snapshots(G), EMA(G, decay=0.95, rampup=1.0), EMA(G, decay=0.95)
    _train(parts, 20, [snapshots, ramped, plain])
    expected = snapshots.kept[0]                                   # the first update copies G
    decays = [min(0.95, 0.5 ** (1 / (1.0 * (n + 1)))) for n in range(1, 20)]     # n: updates so far
    assert decays[0] < 0.75 and decays[-1] == 0.95                  # ramped at first, the plain decay by step 20
    for decay, now in zip(decays, snapshots.kept[1:]):
        expected = [e.lerp(p, 1 - decay) for e, p in zip(expected, now)]
    got = [t for t in [*ramped.module.parameters(), *ramped.module.buffers()] if t.is_floating_point()]
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-7)
    assert not torch.allclose(next(ramped.module.parameters()), next(plain.module.parameters()))
    for bad in (0, -0.05):
        with pytest.raises(ValueError, match=f"rampup={bad}: the ramp-up is a positive fraction"):
            EMA(G, 0.99, rampup=bad)


def test_ema_decay_halves_the_memory_every_half_life_images():
    decay = ema_decay(10_000, 64)
    assert decay ** (10_000 / 64) == pytest.approx(0.5) and decay == 0.5 ** (64 / 10_000)
    for bad in ((0, 64), (10_000, 0)):
        with pytest.raises(ValueError, match="both must be positive"):
            ema_decay(*bad)


# --- Grids ---

def test_grids_sample_the_ema_keep_the_newest_and_write_pngs(tmp_path):
    seed_g = torch.Generator().manual_seed(3)
    G_, D = nn.Sequential(nn.Linear(4, 3 * 8 * 8), nn.Tanh(), nn.Unflatten(1, (3, 8, 8))), nn.Sequential(
        nn.Flatten(), nn.Linear(3 * 8 * 8, 1))
    parts = (G_, D, torch.optim.Adam(G_.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3))
    images = lambda: iter(lambda: torch.rand(8, 3, 8, 8) * 2 - 1, None)               # noqa: E731
    z = torch.randn(4, 4, generator=seed_g)
    ema = EMA(G_, 0.9)
    of_g, of_ema = Grids(z, every=2), Grids(z, every=2, model=ema)
    kept, other = Grids(z, every=2, keep=1, folder=tmp_path / "grids"), Grids(z, every=3, model=ema.module)
    train(*parts, images(), NonSaturatingLoss(), _noise, 4, options=QUIET, callbacks=[ema, of_g, of_ema, kept, other])
    assert [s for s, _ in of_g.samples] == [2, 4] and of_g.samples[0][1].shape == (4, 3, 8, 8)
    assert torch.equal(of_g.samples[-1][1], sample(G_, z)) and torch.equal(of_ema.samples[-1][1], sample(ema.module, z))
    assert not torch.equal(of_g.samples[-1][1], of_ema.samples[-1][1])               # the EMA lags behind G
    assert [s for s, _ in kept.samples] == [4] and torch.equal(kept.samples[0][1], of_g.samples[-1][1])
    assert [s for s, _ in other.samples] == [3]
    assert sorted(p.name for p in (tmp_path / "grids").iterdir()) == ["step_000002.png", "step_000004.png"]
    for bad in (dict(every=0), dict(every=2, keep=0)):
        with pytest.raises(ValueError, match=r"take a grid every >= 1 steps and keep >= 1 \(or None\)"):
            Grids(z, **bad)


def test_grids_come_back_with_a_resumed_run(tmp_path):
    z = torch.randn(3, 4)
    grids = Grids(z, every=2, keep=2)
    _train(_parts(), 5, [grids, Checkpoints(tmp_path, every=100)])
    again = Grids(torch.zeros(3, 4), every=2, keep=2)                 # a new session: its own noise is replaced
    run = _train(_parts(1), 7, [again, Checkpoints(tmp_path, every=100)])
    assert run.resumed_from == 5 and torch.equal(again.fixed_noise, z)
    assert [s for s, _ in again.samples] == [4, 6] and torch.equal(again.samples[0][1], grids.samples[-1][1])


# --- Evaluate and keep_best_by ---

@pytest.mark.parametrize("mode, scores, best", [("min", [0.5, 0.1, 0.3], 4), ("max", [0.5, 0.1, 0.3], 2)])
def test_evaluate_every_keeps_the_best_checkpoint(tmp_path, mode, scores, best):
    values = iter(scores)
    run = _train(_parts(), 6, [Evaluate(lambda step: {"kid": next(values)}, every=2),
                               Checkpoints(tmp_path, every=100, keep_best_by="kid", mode=mode)])
    assert run.evals == [{"step": 2, "kid": 0.5}, {"step": 4, "kid": 0.1}, {"step": 6, "kid": 0.3}]
    assert load_checkpoint(tmp_path / "best.pt")["step"] == best
    assert load_checkpoint(tmp_path / "best.pt")["checkpoint"]["metrics"] == {"kid": scores[best // 2 - 1]}
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 6
    assert load_checkpoint(tmp_path / "last.pt")["run"]["evals"] == run.evals
    with pytest.raises(ValueError, match="every=0: evaluate every >= 1 steps"):
        Evaluate(lambda step: {}, every=0)


def test_an_evaluations_time_is_not_training_time():
    pause = 0.2
    started = time.perf_counter()
    run = _train(_parts(), 6, [Evaluate(lambda step: time.sleep(pause) or {"score": step}, every=2)])
    wall = time.perf_counter() - started
    assert [e["step"] for e in run.evals] == [2, 4, 6]
    assert wall - run.seconds >= 3 * pause                          # the three evaluations are left out


# --- Budget ---

def test_budget_with_until_none_stops_and_a_spent_budget_trains_no_step(tmp_path):
    run = _train(_parts(), None, [Sleepy(0.02), Budget(0.3), Checkpoints(tmp_path, every=1000)])
    assert run.seconds >= 0.3 and 1 <= run.step < 1000
    assert len(run.history["loss_d"]) == run.step
    saved = load_checkpoint(tmp_path / "last.pt")
    assert saved["step"] == run.step and saved["run"]["seconds"] == run.seconds
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    steps = []

    class Count(Callback):
        def on_step(self, loop):
            steps.append(loop.run.step)

    resumed = _train(_parts(1), None, [Count(), Budget(0.3), Checkpoints(tmp_path, every=1000)])
    assert resumed.resumed_from == run.step == resumed.step and steps == []           # already spent: no step
    assert resumed.seconds == run.seconds and {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files
    more = _train(_parts(1), None, [Sleepy(0.02), Budget(run.seconds + 0.2), Checkpoints(tmp_path, every=1000)])
    assert more.resumed_from == run.step < more.step and more.seconds >= run.seconds + 0.2   # a larger budget goes on
    with pytest.raises(ValueError, match="a budget is a number of seconds >= 0"):
        Budget(-1)


def test_until_stops_before_a_budget_does():
    run = _train(_parts(), 3, [Budget(3600)])
    assert run.step == 3


# --- Checkpoints: every_seconds and remember ---

class Recording(Checkpoints):
    """Checkpoints that notes (step, seconds) of each save."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.saves = []

    def save(self, state, **metrics):
        self.saves.append((state["step"], state["run"]["seconds"]))
        return super().save(state, **metrics)


def test_every_seconds_saves_by_training_time(tmp_path):
    by_clock = Recording(tmp_path / "clock", every=1000, every_seconds=0.25)
    run = _train(_parts(), 8, [Sleepy(0.1), by_clock])                  # at least 0.8 s of training
    assert len(by_clock.saves) >= 2 and by_clock.saves[-1] == (8, run.seconds)
    late = [seconds for _, seconds in by_clock.saves[:-1]]               # the saves during the steps
    assert all(b - a >= 0.25 for a, b in zip([0.0] + late, late))       # each one 0.25 s of training after the last
    by_steps = Recording(tmp_path / "steps", every=1000)
    _train(_parts(), 8, [Sleepy(0.1), by_steps])
    assert [step for step, _ in by_steps.saves] == [8]                               # only at the end of the call


def test_remember_computes_once_and_a_new_session_reads_the_saved_result(tmp_path):
    calls = []

    def final_score():
        calls.append(1)
        return {"fid": 41.5, "n": 16}

    ckpt = Checkpoints(tmp_path, every=100)
    run = _train(_parts(), 4, [ckpt])
    assert ckpt.remember("final N=16", final_score) == {"fid": 41.5, "n": 16} and len(calls) == 1
    assert ckpt.remember("final N=16", final_score) == {"fid": 41.5, "n": 16} and len(calls) == 1   # once
    assert run.results == {"final N=16": {"fid": 41.5, "n": 16}}
    assert load_checkpoint(tmp_path / "last.pt")["run"]["results"] == run.results                  # saved

    again = Checkpoints(tmp_path, every=100)                            # an instructor's re-run: finished, loaded
    loaded = _train(_parts(1), 4, [again])
    assert loaded.resumed_from == 4 and loaded.seconds == run.seconds
    assert again.remember("final N=16", final_score) == {"fid": 41.5, "n": 16} and len(calls) == 1   # not rescored
    assert again.remember("final N=64", lambda: calls.append(1) or {"fid": 30.0})["fid"] == 30.0 and len(calls) == 2


def test_a_run_trained_further_forgets_its_remembered_scores(tmp_path):
    calls = []
    ckpt = Checkpoints(tmp_path, every=100)
    _train(_parts(), 4, [ckpt])
    assert ckpt.remember("final", lambda: calls.append(4) or {"fid": 50.0}) == {"fid": 50.0}
    longer = Checkpoints(tmp_path, every=100)                           # a later session trains on to step 6
    run = _train(_parts(1), 6, [longer])
    assert run.resumed_from == 4 and run.step == 6 and run.results == {}         # step 4's score no longer holds
    assert longer.remember("final", lambda: calls.append(6) or {"fid": 40.0}) == {"fid": 40.0} and calls == [4, 6]
