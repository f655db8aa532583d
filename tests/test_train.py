"""The shared training loop and the non-saturating loss."""
import math

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from gan_lib import seed_everything
from gan_lib.losses import NonSaturatingLoss
from gan_lib.train import infinite, sample, train


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


def test_a_tiny_gan_learns_where_the_data_is():
    G, D, opt_g, opt_d, loader = _toy_setup()
    target = torch.tensor([2.0, -1.0])
    before = (sample(G, _noise(1000)).mean(0) - target).norm()
    history = train(G, D, opt_g, opt_d, infinite(loader), NonSaturatingLoss(), _noise, steps=400, progress=False)
    after = (sample(G, _noise(1000)).mean(0) - target).norm()
    assert after < 0.3 < before, (before, after)
    assert len(history["loss_d"]) == len(history["D(x)"]) == len(history["D(G(z)) after D step"]) == 400
    assert all(math.isfinite(v) for v in history["loss_g"])


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

    train(G, D, opt_g, opt_d, counted(infinite(loader)), NonSaturatingLoss(), _noise,
          steps=5, d_steps=3, g_steps=2, progress=False)
    assert calls == {"d": 15, "g": 10, "batches": 15}


def test_fixed_noise_samples_are_kept_and_a_run_can_continue():
    G, D, opt_g, opt_d, loader = _toy_setup()
    z = _noise(8)
    batches = infinite(loader)
    history = train(G, D, opt_g, opt_d, batches, NonSaturatingLoss(), _noise, steps=5,
                    fixed_noise=z, sample_every=2, progress=False)
    history = train(G, D, opt_g, opt_d, batches, NonSaturatingLoss(), _noise, steps=4,
                    fixed_noise=z, sample_every=2, history=history, progress=False)
    assert [s for s, _ in history["samples"]] == [2, 4, 6, 8]
    assert history["step"] == 9 and len(history["loss_d"]) == 9
    assert history["samples"][0][1].shape == (8, 2)


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
    G, D, opt_g, opt_d, loader = _toy_setup()
    with pytest.raises(ValueError, match="d_steps=0"):
        train(G, D, opt_g, opt_d, infinite(loader), NonSaturatingLoss(), _noise, steps=1, d_steps=0)
    G.train()
    sample(G, _noise(2))
    assert G.training


def test_optional_parts_clip_record_hook_and_checkpoint(tmp_path):
    from gan_lib.checkpoints import CheckpointManager, load_checkpoint

    G, D, opt_g, opt_d, loader = _toy_setup()
    clipped = []

    class ClippingLoss(NonSaturatingLoss):
        def after_discriminator_step(self, D):
            for p in D.parameters():
                p.data.clamp_(-0.05, 0.05)
            clipped.append(True)

    seen = []
    manager = CheckpointManager(tmp_path / "ckpt", every=4)
    history = train(G, D, opt_g, opt_d, infinite(loader), ClippingLoss(), _noise, steps=6, d_steps=2,
                    grad_clip=0.5, record_grad_norms=True, checkpoints=manager,
                    on_step=lambda step, h: seen.append(step), progress=False)
    assert not (tmp_path / "grids").exists()  # no fixed noise given: nothing to save
    assert len(clipped) == 12 and all(p.abs().max() <= 0.05 for p in D.parameters())
    assert seen == [1, 2, 3, 4, 5, 6]
    assert len(history["grad_norms_d"]) == 6 and all(len(n) == 2 and min(n) > 0 for n in history["grad_norms_d"])
    state = load_checkpoint(tmp_path / "ckpt" / "last.pt")
    assert state["step"] == 6


def test_fixed_noise_grids_are_kept_and_saved(tmp_path):
    seed_everything(0)
    G = nn.Sequential(nn.Linear(4, 3 * 8 * 8), nn.Tanh(), nn.Unflatten(1, (3, 8, 8)))
    D = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 1))
    real = torch.rand(64, 3, 8, 8) * 2 - 1
    loader = DataLoader(TensorDataset(real), batch_size=16, shuffle=True, drop_last=True)
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=1e-3) for m in (G, D))
    history = train(G, D, opt_g, opt_d, infinite(loader), NonSaturatingLoss(), lambda n: torch.randn(n, 4),
                    steps=4, fixed_noise=torch.randn(4, 4), sample_every=2, sample_dir=tmp_path / "grids",
                    progress=False)
    assert [s for s, _ in history["samples"]] == [2, 4] and history["samples"][0][1].shape == (4, 3, 8, 8)
    assert sorted(p.name for p in (tmp_path / "grids").iterdir()) == ["step_000002.png", "step_000004.png"]


def test_ema_follows_g_and_is_checkpointed(tmp_path):
    from gan_lib.checkpoints import CheckpointManager, load_checkpoint
    from gan_lib.train import make_ema

    G, D, opt_g, opt_d, loader = _toy_setup()
    ema = make_ema(G, decay=0.9)
    start = [p.detach().clone() for p in G.parameters()]
    train(G, D, opt_g, opt_d, infinite(loader), NonSaturatingLoss(), _noise, steps=20, ema=ema,
          checkpoints=CheckpointManager(tmp_path, every=100), progress=False)
    for p0, p, q in zip(start, G.parameters(), ema.module.parameters()):
        assert not torch.equal(q, p0) and not torch.equal(q, p)      # moved, but lags behind G
    assert int(ema.n_averaged) == 20
    assert "ema" in load_checkpoint(tmp_path / "last.pt")["extras"]
    with pytest.raises(ValueError, match="decay"):
        make_ema(G, decay=1.0)


def test_evaluate_every_keeps_the_best_checkpoint(tmp_path):
    from gan_lib.checkpoints import CheckpointManager, load_checkpoint

    G, D, opt_g, opt_d, loader = _toy_setup()
    scores = iter([0.5, 0.1, 0.3])           # the second evaluation (step 4) is the best
    manager = CheckpointManager(tmp_path, every=100, keep_best_by="kid", mode="min")
    history = train(G, D, opt_g, opt_d, infinite(loader), NonSaturatingLoss(), _noise, steps=6, progress=False,
                    checkpoints=manager, evaluate=lambda step: {"kid": next(scores)}, evaluate_every=2)
    assert history["evals"] == [{"step": 2, "kid": 0.5}, {"step": 4, "kid": 0.1}, {"step": 6, "kid": 0.3}]
    assert load_checkpoint(tmp_path / "best.pt")["step"] == 4
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 6
    with pytest.raises(ValueError, match="evaluate"):
        train(G, D, opt_g, opt_d, infinite(loader), NonSaturatingLoss(), _noise, steps=1, evaluate_every=2)


def _interrupting(batches, at_batch):
    """``batches``, with Ctrl-C pressed when batch number ``at_batch`` is asked for."""
    for i, batch in enumerate(batches, start=1):
        if i == at_batch:
            raise KeyboardInterrupt
        yield batch


def test_ctrl_c_saves_a_checkpoint_at_the_current_step_and_says_how_to_go_on(tmp_path, capsys):
    from gan_lib.checkpoints import CheckpointManager, load_checkpoint, restore_training_state

    def stop_at_3(step, history):
        if step == 3:
            raise KeyboardInterrupt

    for where, kwargs, at_batch, step in [("hook", dict(on_step=stop_at_3), None, 3), ("batches", {}, 5, 4)]:
        G, D, opt_g, opt_d, loader = _toy_setup()
        batches = _interrupting(infinite(loader), at_batch)
        with pytest.raises(KeyboardInterrupt) as info:              # still stops a notebook's "run all"
            train(G, D, opt_g, opt_d, batches, NonSaturatingLoss(), _noise, steps=10, progress=False,
                  checkpoints=CheckpointManager(tmp_path / where, every=100), **kwargs)
        path = tmp_path / where / "last.pt"
        state = load_checkpoint(path)
        assert state["step"] == step and len(state["history"]["loss_d"]) == step
        G2, D2, opt_g2, opt_d2, _ = _toy_setup(seed=1)
        restore_training_state(state, G2, D2, opt_g2, opt_d2)
        assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), G2.state_dict().values()))
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines == [f"training stopped by Ctrl-C at step {step}: saved {path}; to go on, run the same cell again "
                         f"(with RESUME = True) or the same command with --resume."], lines
        assert (info.value.step, info.value.path, info.value.history["step"]) == (step, path, step)

    from gan_lib.train import TrainingInterrupted

    G, D, opt_g, opt_d, loader = _toy_setup()                       # no checkpoint manager: nothing to save
    with pytest.raises(TrainingInterrupted):
        train(G, D, opt_g, opt_d, _interrupting(infinite(loader), 3), NonSaturatingLoss(), _noise, steps=10,
              progress=False)
    assert capsys.readouterr().err.strip() == ("training stopped by Ctrl-C at step 2: nothing was saved (no "
                                               "checkpoints= given), but G, D and the history hold that step.")


def test_keep_best_by_a_key_the_evaluation_lacks_is_refused_at_the_first_evaluation(tmp_path):
    from gan_lib.checkpoints import CheckpointManager

    G, D, opt_g, opt_d, loader = _toy_setup()
    calls = []
    evaluate = lambda step: calls.append(step) or {"fid": 40.0, "kid_mean": 0.03}
    with pytest.raises(ValueError) as info:
        train(G, D, opt_g, opt_d, infinite(loader), NonSaturatingLoss(), _noise, steps=6, progress=False,
              checkpoints=CheckpointManager(tmp_path, every=100, keep_best_by="kid"), evaluate=evaluate,
              evaluate_every=2)
    assert str(info.value) == ("keep_best_by='kid' is not among the evaluation's results (fid, kid_mean): pick one "
                               "of them, e.g. keep_best_by='kid_mean'.")
    assert calls == [2] and not (tmp_path / "best.pt").exists()


def test_the_seconds_returned_are_the_seconds_saved_and_a_0_step_call_adds_none(tmp_path):
    """A run that ends with a save returns exactly the train_seconds its last.pt holds (the save's own time is not
    added after it), and train(steps=0), as a session that finds a finished run calls it, adds nothing."""
    from gan_lib.checkpoints import CheckpointManager, load_checkpoint

    G, D, opt_g, opt_d, loader = _toy_setup()
    manager = CheckpointManager(tmp_path / "ckpt", every=2)
    history = train(G, D, opt_g, opt_d, infinite(loader), NonSaturatingLoss(), _noise, steps=4,
                    checkpoints=manager, progress=False)
    saved = load_checkpoint(tmp_path / "ckpt" / "last.pt")["history"]["train_seconds"]
    assert history["train_seconds"] == saved > 0
    again = train(G, D, opt_g, opt_d, infinite(loader), NonSaturatingLoss(), _noise, steps=0, history=history,
                  checkpoints=manager, progress=False)
    assert again["train_seconds"] == saved
