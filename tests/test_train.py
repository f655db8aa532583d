"""The shared training loop: train(...) -> Run, Options, callbacks, until as the total, Ctrl-C, the time it counts,
and the fp16 GradScaler carried across calls and checkpoints."""
import math

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from gan_lib import seed_everything
from gan_lib.callbacks import Evaluate, Grids
from gan_lib.checkpoints import Checkpoints, load_checkpoint
from gan_lib.losses import NonSaturatingLoss
from gan_lib.models import mlp_gan, uniform_noise
from gan_lib.train import Callback, Options, Run, TrainingInterrupted, train
from gan_lib.data import ImageBatches, infinite
from gan_lib.explore import sample

QUIET = Options(progress=False)


def _toy_setup(seed=0):
    seed_everything(seed)
    real = torch.randn(512, 2) * 0.1 + torch.tensor([2.0, -1.0])               # (512, 2)
    loader = DataLoader(TensorDataset(real), batch_size=64, shuffle=True, drop_last=True)
    G = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999))
    return G, D, opt_g, opt_d, loader


def _noise(n):
    return torch.randn(n, 2)


class Steps(Callback):
    """Records the step after each one (what the old on_step hook did)."""

    def __init__(self):
        self.seen = []

    def on_step(self, loop):
        self.seen.append(loop.run.step)


def test_a_tiny_gan_learns_where_the_data_is():
    G, D, opt_g, opt_d, loader = _toy_setup()
    target = torch.tensor([2.0, -1.0])
    before = (sample(G, _noise(1000)).mean(0) - target).norm()
    run = train(G, D, opt_g, opt_d, infinite(loader), NonSaturatingLoss(), _noise, 400, options=QUIET)
    after = (sample(G, _noise(1000)).mean(0) - target).norm()
    assert after < 0.3 < before, (before, after)
    assert isinstance(run, Run) and run.step == 400 and run.seconds > 0 and run.resumed_from is None
    assert len(run.history["loss_d"]) == len(run.history["D(x)"]) == len(run.history["D(G(z)) after D step"]) == 400
    assert all(math.isfinite(v) for v in run.history["loss_g"])
    assert set(run.history) == {"loss_d", "loss_g", "D(x)", "D(G(z)) before D step", "D(G(z)) after D step"}
    assert run.evals == [] and run.warnings == [] and run.fp16_skipped == 0 and run.scaler == {}


def test_d_steps_and_g_steps_count_updates_and_batches():
    G, D, opt_g, opt_d, loader = _toy_setup()
    calls = {"d": 0, "g": 0, "batches": 0}
    for name, opt in (("d", opt_d), ("g", opt_g)):
        original = opt.step
        opt.step = lambda *a, _o=original, _n=name, **k: (calls.__setitem__(_n, calls[_n] + 1), _o(*a, **k))[1]

    def counted(it):
        for batch in it:
            calls["batches"] += 1
            yield batch

    train(G, D, opt_g, opt_d, counted(infinite(loader)), NonSaturatingLoss(), _noise, 5,
          options=Options(d_steps=3, g_steps=2, progress=False))
    assert calls == {"d": 15, "g": 10, "batches": 15}


def test_until_is_the_total_a_run_continues_with_run_and_a_reached_until_trains_nothing():
    G, D, opt_g, opt_d, loader = _toy_setup()
    batches, grids, steps = infinite(loader), Grids(_noise(8), every=2), Steps()
    run = train(G, D, opt_g, opt_d, batches, NonSaturatingLoss(), _noise, 5, callbacks=[grids, steps], options=QUIET)
    assert run.step == 5
    again = train(G, D, opt_g, opt_d, batches, NonSaturatingLoss(), _noise, 9, callbacks=[grids, steps],
                  options=QUIET, run=run)
    assert again is run and run.step == 9 and len(run.history["loss_d"]) == 9      # 4 more, not 9 more
    assert [s for s, _ in grids.samples] == [2, 4, 6, 8] and grids.samples[0][1].shape == (8, 2)
    assert steps.seen == list(range(1, 10))
    before = [p.clone() for p in G.parameters()]
    for until in (9, 3):                                                          # reached or passed: nothing
        train(G, D, opt_g, opt_d, batches, NonSaturatingLoss(), _noise, until, callbacks=[steps], options=QUIET,
              run=run)
    assert run.step == 9 and steps.seen == list(range(1, 10))
    assert all(torch.equal(a, b) for a, b in zip(before, G.parameters()))


def test_label_smoothing_changes_only_the_real_target():
    identity = nn.Identity()                                   # D(x) = x: the inputs are the logits
    a_real, a_fake = torch.tensor([[1.5]]), torch.tensor([[-0.5]])
    loss, stats = NonSaturatingLoss(real_label=0.9).discriminator_loss(identity, a_real, a_fake)
    s = torch.sigmoid
    expected = -(0.9 * torch.log(s(a_real)) + 0.1 * torch.log(1 - s(a_real))) - torch.log(1 - s(a_fake))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert stats["D(x)"].item() == pytest.approx(s(a_real).item())
    g_loss, _ = NonSaturatingLoss(real_label=0.9).generator_loss(identity, a_fake)
    assert g_loss.item() == pytest.approx(-torch.log(s(a_fake)).item(), rel=1e-6)   # G's target stays 1
    with pytest.raises(ValueError, match="real_label=0.3"):
        NonSaturatingLoss(real_label=0.3)


def test_clear_errors_and_sample_restores_mode():
    with pytest.raises(ValueError, match="yielded no batch"):
        next(infinite(DataLoader(TensorDataset(torch.zeros(3, 2)), batch_size=4, drop_last=True)))
    for bad in (dict(d_steps=0), dict(g_steps=0), dict(grad_clip=0.0)):
        with pytest.raises(ValueError, match=r"the step counts must be >= 1 and grad_clip > 0 \(or None\)\.$"):
            Options(**bad)
    G, D, opt_g, opt_d, loader = _toy_setup()
    G.train()
    sample(G, _noise(2))
    assert G.training


def test_optional_parts_clip_record_callback_and_checkpoint(tmp_path):
    G, D, opt_g, opt_d, loader = _toy_setup()
    clipped = []

    class ClippingLoss(NonSaturatingLoss):
        def after_discriminator_step(self, D):
            for p in D.parameters():
                p.data.clamp_(-0.05, 0.05)
            clipped.append(True)

    steps = Steps()
    run = train(G, D, opt_g, opt_d, infinite(loader), ClippingLoss(), _noise, 6,
                options=Options(d_steps=2, grad_clip=0.5, record_grad_norms=True, progress=False),
                callbacks=[steps, Checkpoints(tmp_path / "ckpt", every=4)])
    assert len(clipped) == 12 and all(p.abs().max() <= 0.05 for p in D.parameters())
    assert steps.seen == [1, 2, 3, 4, 5, 6]
    norms = run.history["grad_norms_d"]                                       # per step: one norm per weight
    assert len(norms) == 6 and all(len(n) == 2 and min(n) > 0 for n in norms)
    assert [load_checkpoint(tmp_path / "ckpt" / n)["step"] for n in ("last.pt", "previous.pt")] == [6, 4]
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["last.pt", "previous.pt"]


def test_callbacks_run_in_order_and_on_start_and_on_end_in_reverse():
    G, D, opt_g, opt_d, loader = _toy_setup()
    said = []

    class Named(Callback):
        def __init__(self, name, order):
            self.label, self.order = name, order

        def on_start(self, loop):
            said.append(f"start {self.label}")

        def on_step(self, loop):
            said.append(f"step {self.label}")

        def on_end(self, loop):
            said.append(f"end {self.label}")

    train(G, D, opt_g, opt_d, infinite(loader), NonSaturatingLoss(), _noise, 1,
          callbacks=[Named("late", 5), Named("early", -5)], options=QUIET)
    assert said == ["start late", "start early", "step early", "step late", "end late", "end early"]


def test_a_callback_can_stop_the_call():
    G, D, opt_g, opt_d, loader = _toy_setup()

    class StopAt3(Callback):
        def on_step(self, loop):
            if loop.run.step == 3:
                loop.stop = "enough"

    run = train(G, D, opt_g, opt_d, infinite(loader), NonSaturatingLoss(), _noise, 10, callbacks=[StopAt3()],
                options=QUIET)
    assert run.step == 3 and len(run.history["loss_d"]) == 3


def _interrupting(batches, at_batch):
    """``batches``, with Ctrl-C pressed when batch number ``at_batch`` is asked for."""
    for i, batch in enumerate(batches, start=1):
        if i == at_batch:
            raise KeyboardInterrupt
        yield batch


class CtrlCAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step(self, loop):
        if loop.run.step == self.step:
            raise KeyboardInterrupt


def test_ctrl_c_saves_a_checkpoint_at_the_last_finished_step_and_says_how_to_go_on(tmp_path, capsys):
    for where, callbacks, at_batch, step in [("hook", [CtrlCAt(3)], None, 3), ("batches", [], 5, 4)]:
        G, D, opt_g, opt_d, loader = _toy_setup()
        batches = _interrupting(infinite(loader), at_batch)
        folder = tmp_path / where
        with pytest.raises(KeyboardInterrupt) as info:              # still stops a notebook's "run all"
            train(G, D, opt_g, opt_d, batches, NonSaturatingLoss(), _noise, 10, options=QUIET,
                  callbacks=[*callbacks, Checkpoints(folder, every=100)])
        assert isinstance(info.value, TrainingInterrupted)
        path = folder / "last.pt"
        state = load_checkpoint(path)
        assert state["step"] == step and len(state["run"]["history"]["loss_d"]) == step
        assert state["run"]["seconds"] == info.value.run.seconds > 0
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines == [f"training stopped by Ctrl-C at step {step}: saved {path}; to go on, run the same cell again "
                         f"(with RESUME = True) or the same command with --resume."], lines
        assert (info.value.run.step, info.value.path) == (step, path)
        G2, D2, opt_g2, opt_d2, loader2 = _toy_setup(seed=1)            # a new session loads that step
        resumed = train(G2, D2, opt_g2, opt_d2, infinite(loader2), NonSaturatingLoss(), _noise, step, options=QUIET,
                        callbacks=[Checkpoints(folder, every=100)])
        assert resumed.resumed_from == step == resumed.step
        assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), G2.state_dict().values()))

    G, D, opt_g, opt_d, loader = _toy_setup()                       # no Checkpoints: nothing to save
    with pytest.raises(TrainingInterrupted) as info:
        train(G, D, opt_g, opt_d, _interrupting(infinite(loader), 3), NonSaturatingLoss(), _noise, 10, options=QUIET)
    assert info.value.run.step == 2 and info.value.path is None
    assert capsys.readouterr().err.strip() == ("training stopped by Ctrl-C at step 2: nothing was saved (no "
                                               "Checkpoints callback), but G, D and the run hold that step.")


def test_keep_best_by_a_key_the_evaluation_lacks_is_refused_at_the_first_evaluation(tmp_path):
    G, D, opt_g, opt_d, loader = _toy_setup()
    calls = []
    evaluate = lambda step: calls.append(step) or {"fid": 40.0, "kid_mean": 0.03}   # noqa: E731
    with pytest.raises(ValueError) as info:
        train(G, D, opt_g, opt_d, infinite(loader), NonSaturatingLoss(), _noise, 6, options=QUIET,
              callbacks=[Evaluate(evaluate, every=2), Checkpoints(tmp_path, every=100, keep_best_by="kid")])
    assert str(info.value) == ("keep_best_by='kid' is not among the evaluation's results (fid, kid_mean): pick one "
                               "of them, e.g. keep_best_by='kid_mean'.")
    assert calls == [2] and not (tmp_path / "best.pt").exists()


def test_the_seconds_returned_are_the_seconds_saved_and_a_0_step_call_adds_none(tmp_path):
    """A run that ends with a save returns exactly the seconds its last.pt holds (the save's own time is not added
    after it); a call whose until is already reached (in this session with run=, or in a new session that loads
    the finished run) adds no time and writes nothing."""
    G, D, opt_g, opt_d, loader = _toy_setup()
    folder = tmp_path / "ckpt"
    for until in (4, 5):                            # ends on a due save (every=2), then on the end-of-call save
        run = train(G, D, opt_g, opt_d, infinite(loader), NonSaturatingLoss(), _noise, until, options=QUIET,
                    callbacks=[Checkpoints(folder, every=2)], run=None if until == 4 else run)
        saved = load_checkpoint(folder / "last.pt")["run"]["seconds"]
        assert run.step == until and run.seconds == saved > 0
    files = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()}
    again = train(G, D, opt_g, opt_d, infinite(loader), NonSaturatingLoss(), _noise, 5, options=QUIET,
                  callbacks=[Checkpoints(folder, every=2)], run=run)
    assert again.seconds == saved and again.step == 5
    G2, D2, opt_g2, opt_d2, loader2 = _toy_setup(seed=1)
    loaded = train(G2, D2, opt_g2, opt_d2, infinite(loader2), NonSaturatingLoss(), _noise, 5, options=QUIET,
                   callbacks=[Checkpoints(folder, every=2)])
    assert loaded.resumed_from == 5 and loaded.seconds == saved and loaded.history == run.history
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()} == files     # no save


class Spiky(NonSaturatingLoss):
    """Every 7th D loss is inf: the GradScaler skips that update and halves its scale. Its call count is its state,
    so a checkpoint carries where the next spike falls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def discriminator_loss(self, D, real, fake, scale=1.0):
        loss, stats = super().discriminator_loss(D, real, fake, scale)
        self.calls += 1
        return (loss * float("inf") if self.calls % 7 == 0 else loss), stats

    def state_dict(self):
        return {"calls": self.calls}

    def load_state_dict(self, state):
        self.calls = state["calls"]


FP16 = Options(precision="fp16", progress=False)


def _fp16_setup():
    seed_everything(0)
    G, D = mlp_gan(16, g_hidden=(32,), d_hidden=(32,))
    images = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1   # (64, 1, 28, 28)
    return (G, D, torch.optim.Adam(G.parameters(), 2e-4), torch.optim.Adam(D.parameters(), 2e-4),
            ImageBatches(images, 16, seed=0), Spiky())


def _fp16_noise(n):
    return uniform_noise(n, 16)


def test_fp16_a_run_split_into_10_calls_ends_with_the_scale_and_weights_of_one_call():
    """The GradScaler lives in the Run: each call goes on with the scale the last one reached instead of starting
    again at 65,536 (which would re-skip updates and change the weights)."""
    G, D, opt_g, opt_d, batches, loss = _fp16_setup()
    one = train(G, D, opt_g, opt_d, batches, loss, _fp16_noise, 30, options=FP16)
    weights = [t.clone() for t in [*G.state_dict().values(), *D.state_dict().values()]]
    G, D, opt_g, opt_d, batches, loss = _fp16_setup()
    split = None
    for k in range(1, 11):
        split = train(G, D, opt_g, opt_d, batches, loss, _fp16_noise, 3 * k, options=FP16, run=split)
    initial = torch.amp.GradScaler("cpu").get_scale()
    assert one.scaler["scale"] < initial == 65536.0                        # the spikes did lower the scale
    assert split.scaler["scale"] == one.scaler["scale"] and split.scaler == one.scaler
    assert split.fp16_skipped == one.fp16_skipped >= 4 and split.step == one.step == 30
    assert split.history == one.history
    assert all(torch.equal(a, b) for a, b in zip(weights, [*G.state_dict().values(), *D.state_dict().values()]))


def test_fp16_the_scaler_state_is_saved_and_comes_back_after_a_checkpoints_resume(tmp_path):
    G, D, opt_g, opt_d, batches, loss = _fp16_setup()
    straight = train(G, D, opt_g, opt_d, batches, loss, _fp16_noise, 30, options=FP16)
    weights = [t.clone() for t in [*G.state_dict().values(), *D.state_dict().values()]]

    G, D, opt_g, opt_d, batches, loss = _fp16_setup()                      # session 1: 15 steps, then gone
    first = train(G, D, opt_g, opt_d, batches, loss, _fp16_noise, 15, options=FP16,
                  callbacks=[Checkpoints(tmp_path, every=100)])
    saved = load_checkpoint(tmp_path / "last.pt")["run"]["scaler"]
    assert saved == first.scaler and saved["scale"] < 65536.0 and first.fp16_skipped >= 2

    seed_everything(123)                                                   # session 2: built afresh, other weights
    G, D = mlp_gan(16, g_hidden=(32,), d_hidden=(32,))
    images = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 2e-4), torch.optim.Adam(D.parameters(), 2e-4)
    scales = []

    class Scale(Callback):
        def on_start(self, loop):                                          # after Checkpoints restored the run
            scales.append(loop.run.scaler["scale"])

    resumed = train(G, D, opt_g, opt_d, ImageBatches(images, 16, seed=0), Spiky(), _fp16_noise, 30, options=FP16,
                    callbacks=[Scale(), Checkpoints(tmp_path, every=100)])
    assert resumed.resumed_from == 15 and scales == [saved["scale"]]
    assert resumed.scaler == straight.scaler and resumed.scaler["scale"] < saved["scale"]
    assert resumed.fp16_skipped == straight.fp16_skipped and resumed.history == straight.history
    assert all(torch.equal(a, b) for a, b in zip(weights, [*G.state_dict().values(), *D.state_dict().values()]))
