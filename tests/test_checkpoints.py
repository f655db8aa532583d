"""Checkpoints: exact resumes through train, safe and clear loading, best/last bookkeeping, settings, NaN and
a resume after a NaN, and saves that survive SIGKILL."""
import math
import os
import pickle
import random
import re
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from gan_lib.callbacks import EMA, Grids
from gan_lib.checkpoints import (FORMAT, CheckpointError, Checkpoints, load_checkpoint, rng_state, save_checkpoint,
                                 set_rng_state)
from gan_lib.io.files import NAMES
from gan_lib.losses import NonSaturatingLoss
from gan_lib.train import Callback, Options, train
from gan_lib.callbacks import TrainingDiverged

ROOT = Path(__file__).resolve().parents[1]
QUIET = Options(progress=False)


class Schedule(Callback):
    """An LR schedule stepped after every step; its state is saved with the run (as any callback's is)."""

    def __init__(self, opt, step_size=3):
        self.scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=step_size, gamma=0.5)

    def on_step(self, loop):
        self.scheduler.step()

    def state_dict(self):
        return self.scheduler.state_dict()

    def load_state_dict(self, state):
        self.scheduler.load_state_dict(state)


class Seen(Callback):
    """What the run looks like once ``Checkpoints`` has restored it (on_start runs in reverse order)."""

    def __init__(self):
        self.step, self.data = None, None

    def on_start(self, loop):
        self.step = loop.run.step
        self.data = loop.batches.state_dict() if hasattr(loop.batches, "state_dict") else None


def _models(seed):
    """A small pair (batch norm in G: buffers too), its optimisers, and the callbacks that keep a state."""
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
    D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999))
    callbacks = [EMA(G, 0.9, rampup=0.5),                      # ramped: its decay depends on the restored count
                 Schedule(opt_g), Grids(torch.randn(3, 4, generator=torch.Generator().manual_seed(9)), every=2)]
    return G, D, opt_g, opt_d, callbacks


def _batches():
    while True:   # draws from torch's global generator, so resuming must restore it to repeat the run
        yield torch.randn(32, 2) * 0.1 + torch.tensor([2.0, -1.0])                    # (32, 2)


def _noise(n):
    return torch.randn(n, 4)


def _run(parts, until, folder, loss=None, every=3, **checkpoints):
    G, D, opt_g, opt_d, callbacks = parts
    return train(G, D, opt_g, opt_d, _batches(), loss or NonSaturatingLoss(), _noise, until, options=QUIET,
                 callbacks=[*callbacks, Checkpoints(folder, every=every, **checkpoints)])


def _assert_same(a, b, where="state"):
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def _assert_same_run(one, two):
    """Two runs' weights, optimisers, callbacks' states and Runs (all but the time) are bit for bit the same."""
    for a, b in zip(one[:4], two[:4]):
        _assert_same(a.state_dict(), b.state_dict(), type(a).__name__)
    for a, b in zip(one[4], two[4]):
        _assert_same(a.state_dict(), b.state_dict(), a.name)


def _without_time(run):
    return {key: value for key, value in run.state_dict().items() if key != "seconds"}


def test_a_resumed_run_is_bit_identical_to_one_that_never_stopped(tmp_path):
    straight_parts = _models(0)
    straight = _run(straight_parts, 7, tmp_path / "straight")                          # 7 steps without stopping
    rng_after = torch.get_rng_state()

    first = _run(_models(0), 4, tmp_path / "stopped")                                  # session 1: 4, then gone
    assert first.step == 4 and load_checkpoint(tmp_path / "stopped" / "last.pt")["step"] == 4
    parts = _models(1)                                                                 # session 2: other weights
    seen = Seen()
    resumed = _run((*parts[:4], [*parts[4], seen]), 7, tmp_path / "stopped")
    assert seen.step == 4 and resumed.resumed_from == 4 and resumed.step == 7
    _assert_same_run(straight_parts, parts)                                            # G, D, opts, EMA, LR, grids
    assert [s for s, _ in parts[4][2].samples] == [2, 4, 6]
    _assert_same(_without_time(resumed), _without_time(straight), "run")               # history, callbacks, ...
    assert torch.equal(torch.get_rng_state(), rng_after)                               # the random stream too


def _draw():
    return torch.rand(4), np.random.rand(3), np.random.randn(), random.random(), random.gauss(0, 1)


def test_rng_round_trip_repeats_torch_numpy_and_python(tmp_path):
    np.random.randn()            # leaves a cached Gaussian in NumPy ...
    random.gauss(0, 1)           # ... and in Python, which must come back too
    save_checkpoint(tmp_path / "rng.pt", {"rng": rng_state()})
    first = _draw()
    assert not np.array_equal(_draw()[1], first[1])                                   # the streams do move on
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                                 # no GPU on either side
        set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    again = _draw()
    for a, b in zip(first, again):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    one_more = torch.cuda.get_rng_state(0) if torch.cuda.is_available() else torch.get_rng_state()
    from_more_gpus = dict(rng_state(), cuda=rng_state()["cuda"] + [one_more])          # e.g. a GPU run on a CPU
    with pytest.warns(UserWarning, match=f"holds {torch.cuda.device_count() + 1} GPU random state"):
        set_rng_state(from_more_gpus)


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def test_a_checkpoint_that_would_run_code_is_refused_and_not_run(tmp_path):
    canary = tmp_path / "canary"
    pickle.loads(pickle.dumps(_Evil(canary)))      # the payload works when unpickled unsafely ...
    assert canary.exists()
    marker = tmp_path / "pwned"
    torch.save({"G": {"w": torch.zeros(2)}, "x": _Evil(marker)}, tmp_path / "evil.pt")
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"x": _Evil(marker)}, protocol=2))
    for name in ("evil.pt", "evil.pkl"):
        with pytest.raises(CheckpointError, match=rf"{name} holds pickled Python objects.*refuses to run"):
            load_checkpoint(tmp_path / name)
    assert not marker.exists()                     # ... and load_checkpoint never ran it


def _one_sentence(message, path):
    assert str(path) in message and message.endswith(".") and not re.search(r"[.:]\s+[A-Z]", message), message


def test_damaged_foreign_and_missing_files_get_one_clear_sentence(tmp_path):
    good = save_checkpoint(tmp_path / "good.pt", {"w": torch.arange(10_000.0)})
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "notes.pt").write_text("step 1000: looks good\n")
    with zipfile.ZipFile(tmp_path / "photos.pt", "w") as z:
        z.writestr("face.txt", "not a checkpoint")
    cases = {"cut.pt": (CheckpointError, "is truncated"), "empty.pt": (CheckpointError, r"is empty \(0 bytes\)"),
             "notes.pt": (CheckpointError, "is not a PyTorch checkpoint"),
             "photos.pt": (CheckpointError, "is a zip archive but not a PyTorch checkpoint"),
             "missing.pt": (FileNotFoundError, "does not exist")}
    for name, (kind, words) in cases.items():
        with pytest.raises(kind, match=words) as info:
            load_checkpoint(tmp_path / name)
        _one_sentence(str(info.value), tmp_path / name)
    assert torch.equal(load_checkpoint(good)["w"], torch.arange(10_000.0))


def test_saving_refuses_what_weights_only_cannot_load_and_keeps_the_old_file(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", {"step": 1})
    for bad, where in [({"history": defaultdict(list)}, r"state\['history'\]"),
                       ({"fid": [1.0, np.float64(2.0)]}, r"state\['fid'\]\[1\]")]:
        with pytest.raises(TypeError, match=where + r" is a .*cannot read back"):
            save_checkpoint(path, bad)
    assert load_checkpoint(path) == {"step": 1} and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


@pytest.mark.parametrize("mode, values, best_at", [("min", [50.0, 40.0, float("nan"), 45.0], 2),
                                                   ("max", [0.2, 0.5, float("nan"), 0.3], 2)])
def test_best_and_last_are_kept_by_the_metric(tmp_path, mode, values, best_at):
    manager = Checkpoints(tmp_path, every=10, keep_best_by="score", mode=mode)
    assert manager.load() is None
    for step, value in enumerate(values, start=1):
        written = manager.save({"step": step, "w": torch.full((3,), float(step))}, score=value)
        assert [p.name for p in written] == ["last.pt", "best.pt"] if step <= best_at else ["last.pt"]
    assert load_checkpoint(tmp_path / "best.pt")["step"] == best_at
    assert [load_checkpoint(tmp_path / n)["step"] for n in ("last.pt", "previous.pt")] == [4, 3]
    restarted = Checkpoints(tmp_path, keep_best_by="score", mode=mode)          # a new session
    assert restarted.best() == values[best_at - 1]
    better = values[best_at - 1] - 1 if mode == "min" else values[best_at - 1] + 1
    assert [p.name for p in restarted.save({"step": 5}, score=better)] == ["last.pt", "best.pt"]
    assert restarted.load()["step"] == 5


def test_resume_falls_back_from_a_damaged_last_and_refuses_when_nothing_loads(tmp_path):
    manager = Checkpoints(tmp_path, keep_best_by="fid")
    manager.save({"step": 1}, fid=10.0)                       # best.pt holds step 1
    manager.save({"step": 2}, fid=20.0)
    manager.save({"step": 3}, fid=30.0)                       # previous.pt holds step 2
    (tmp_path / "last.pt").write_bytes((tmp_path / "last.pt").read_bytes()[:100])
    (tmp_path / ".last.pt.abc.tmp").write_bytes(b"half a save")
    with pytest.warns(UserWarning) as caught:
        assert manager.load()["step"] == 2
    messages = [str(w.message) for w in caught]
    assert any("removed 1 unfinished temporary file" in m for m in messages), messages
    assert any(re.search(r"previous.pt \(step 2\) because .*last.pt is truncated", m) for m in messages), messages
    assert not (tmp_path / ".last.pt.abc.tmp").exists() and (tmp_path / "last.damaged.pt").exists()
    assert load_checkpoint(manager.save({"step": 3})[0])["step"] == 3                  # previous.pt is not clobbered
    assert load_checkpoint(tmp_path / "previous.pt")["step"] == 2
    for name in NAMES:
        (tmp_path / name).write_text("garbage")
    with pytest.raises(CheckpointError, match="no checkpoint in .* loads"):
        manager.load()


def test_resume_picks_the_newer_of_previous_and_best(tmp_path):
    manager = Checkpoints(tmp_path, keep_best_by="afd", mode="max")
    for step, afd in enumerate([0.1, 0.2, 0.3], start=1):                              # every save is the best
        manager.save({"step": step}, afd=afd)
    (tmp_path / "last.pt").write_bytes(b"")
    with pytest.warns(UserWarning, match=r"best.pt \(step 3\) because .*last.pt is empty"):
        assert manager.load()["step"] == 3


CHILD = r"""
import os, sys, time, torch
from gan_lib.checkpoints import save_checkpoint
torch.set_num_threads(1)
path, n = sys.argv[1], int(sys.argv[2])
data = torch.empty(n, dtype=torch.int32)
def version(i):
    return {"counter": i, "data": data.fill_(i), "tail": i}
start = time.perf_counter()
save_checkpoint(path, version(0))
print("ready", time.perf_counter() - start, flush=True)
for round_ in range(1, 100):
    if not sys.stdin.readline():
        break
    pid = os.fork()
    if pid == 0:                                  # the writer the test kills: saves back to back, for 20 s at most
        deadline, i = time.monotonic() + 20, round_ * 1000
        while time.monotonic() < deadline:
            i += 1
            save_checkpoint(path, version(i))
        os._exit(0)
    print(pid, flush=True)
    print("dead", os.waitpid(pid, 0)[1], flush=True)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks writer processes after importing torch")
def test_sigkill_in_the_middle_of_saving_never_leaves_a_broken_checkpoint(tmp_path):
    """A helper process imports torch once, then forks a writer per round that saves a 20 MB checkpoint to the
    same path back to back; the test SIGKILLs each writer at a random moment and loads what is left."""
    path, n, kills = tmp_path / "last.pt", 5_000_000, 6
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(n)], cwd=ROOT, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        save_s = float(child.stdout.readline().split()[1])
        seen, delays = 0, []
        for _ in range(kills):
            child.stdin.write("go\n")
            child.stdin.flush()
            writer = int(child.stdout.readline())
            delays.append(random.uniform(0.2, 2.5) * save_s)
            time.sleep(delays[-1])
            os.kill(writer, signal.SIGKILL)
            assert child.stdout.readline().split() == ["dead", str(signal.SIGKILL)], delays
            interrupted = len(list(tmp_path.glob(".last.pt.*.tmp")))      # one per kill inside a save so far
            state = load_checkpoint(path)
            counter = state["counter"]
            assert state["tail"] == counter >= seen and state["data"].shape == (n,), delays
            assert bool((state["data"] == counter).all()), f"a mix of versions at counter {counter}, {delays}"
            seen = counter
        assert interrupted >= 1, f"no kill landed inside a save (delays {delays}): the test proved nothing"
        with pytest.warns(UserWarning, match=f"removed {interrupted} unfinished"):
            assert Checkpoints(tmp_path).load()["counter"] == seen
        assert [p.name for p in tmp_path.iterdir()] == ["last.pt"], "the manager cleans what killed saves left"
    finally:
        child.kill()
        child.wait()


def _mlp_run(folder, hidden=32, until=3, seed=0, **checkpoints):
    from gan_lib.models import mlp_gan, uniform_noise

    torch.manual_seed(seed)
    G, D = mlp_gan(8, g_hidden=(hidden,), d_hidden=(16,), image_shape=(1, 4, 4))
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3)
    batches = iter(lambda: torch.rand(8, 1, 4, 4) * 2 - 1, None)                       # (8, 1, 4, 4) forever
    return train(G, D, opt_g, opt_d, batches, NonSaturatingLoss(), lambda n: uniform_noise(n, 8), until,
                 options=QUIET, callbacks=[Checkpoints(folder, every=100, **checkpoints)])


def test_a_checkpoint_of_another_model_or_format_is_one_clear_error(tmp_path):
    _mlp_run(tmp_path / "run")
    with pytest.raises(CheckpointError, match=r"the checkpoint's G does not fit the one you built .*: build the same "
                                              r"model/optimiser as the saved run, or start fresh in a new folder\.$"):
        _mlp_run(tmp_path / "run", hidden=48)
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["format"] == FORMAT == 2
    save_checkpoint(tmp_path / "old" / "last.pt", {**state, "format": 1})              # gan_lib 1.x wrote format 1
    with pytest.raises(CheckpointError) as info:
        _mlp_run(tmp_path / "old")
    assert str(info.value) == ("this checkpoint was not written by training_state() of this gan_lib version: load "
                               "its parts by hand or start a fresh run.")


def _image_run(folder, loss_name, seed, until):
    """A small DCGAN on ImageBatches (flips on), an LR schedule on D stepped each step, checkpoints in ``folder``."""
    from gan_lib.data import ImageBatches
    from gan_lib.losses import WassersteinGPLoss
    from gan_lib.models import dcgan, gaussian_noise

    torch.manual_seed(seed)
    G, D = dcgan(64, g_width=4, d_width=4, d_norm="layer" if loss_name == "wgan-gp" else "batch")
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), 1e-3, (0.0, 0.9)) for m in (G, D))
    pixels = torch.randint(0, 256, (20, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(7))
    batches = ImageBatches(pixels, batch_size=6, seed=3, flip=True)            # 3 batches an epoch: epochs turn over
    loss = WassersteinGPLoss() if loss_name == "wgan-gp" else NonSaturatingLoss()
    z = gaussian_noise(4, 100, generator=torch.Generator().manual_seed(seed))   # seed 123: other fixed noise
    callbacks = [Schedule(opt_d, step_size=2), Grids(z, every=2), (seen := Seen()), Checkpoints(folder, every=3)]
    run = train(G, D, opt_g, opt_d, batches, loss, lambda n: gaussian_noise(n, 100), until, callbacks=callbacks,
                options=Options(d_steps=2 if loss_name == "wgan-gp" else 1, progress=False))
    return (G, D, opt_g, opt_d, callbacks[:2]), batches, seen, run


@pytest.mark.parametrize("loss_name", ["bce", "wgan-gp"])
def test_stopping_and_resuming_through_train_is_bit_identical_with_image_batches(tmp_path, loss_name):
    parts, batches, _, straight = _image_run(tmp_path / "straight", loss_name, seed=0, until=7)
    _image_run(tmp_path / "stopped", loss_name, seed=0, until=4)              # session 1: 4 steps, then "disconnect"
    parts2, batches2, seen, resumed = _image_run(tmp_path / "stopped", loss_name, seed=123, until=7)   # session 2
    d_steps = 2 if loss_name == "wgan-gp" else 1
    assert seen.step == 4 and seen.data["position"] == (4 * d_steps % 3) * 6   # the data's place, restored
    _assert_same_run(parts, parts2)                                           # weights, optimisers, LR, grids
    assert batches.state_dict() == batches2.state_dict()
    assert resumed.step == straight.step == 7 and resumed.history == straight.history
    assert resumed.resumed_from == 4 and [s for s, _ in parts2[4][1].samples] == [2, 4, 6]


def test_a_checkpoint_without_a_callbacks_state_still_resumes_with_a_warning(tmp_path):
    """A run saved without an EMA (or by an older version) resumes with one, which keeps its current state; a
    saved callback state nobody asks for is said too."""
    G, D, opt_g, opt_d, callbacks = _models(0)
    train(G, D, opt_g, opt_d, _batches(), NonSaturatingLoss(), _noise, 3, options=QUIET,
          callbacks=[callbacks[1], Checkpoints(tmp_path, every=100)])                   # Schedule only
    G2, D2, opt_g2, opt_d2, callbacks2 = _models(1)
    unused = r"1 callback state\(s\) in the checkpoint were not restored: \['Schedule'\]"
    with pytest.warns(UserWarning, match=r"no callback state for \['EMA'\].*keep their current state"), \
            pytest.warns(UserWarning, match=unused):
        run = train(G2, D2, opt_g2, opt_d2, _batches(), NonSaturatingLoss(), _noise, 3, options=QUIET,
                    callbacks=[callbacks2[0], Checkpoints(tmp_path, every=100)])
    assert run.resumed_from == 3 and torch.equal(G2[0].weight, G[0].weight)
    with pytest.warns(UserWarning, match=unused):
        _run(_models(1)[:4] + ([],), 3, tmp_path)


def test_resume_refuses_a_run_trained_with_other_settings_and_names_each_change(tmp_path):
    settings = {"lr": 2e-4, "batch": 64, "loss": "bce", "widths": (128, 256)}
    manager = Checkpoints(tmp_path, keep_best_by="kid", settings=settings)
    manager.save({"step": 3}, kid=0.5)
    assert Checkpoints(tmp_path, settings=dict(settings)).load()["step"] == 3          # same settings: loads
    changed = Checkpoints(tmp_path, keep_best_by="kid", settings={**settings, "lr": 1e-4, "batch": 128})
    with pytest.raises(CheckpointError) as caught:
        changed.load()
    message = str(caught.value)
    assert "batch 64 -> 128; lr 0.0002 -> 0.0001" in message and "loss" not in message
    assert "new checkpoint folder" in message and "RESUME = False" in message and message.count(". ") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]                 # nothing deleted
    assert changed.best() is None                     # the other run's best.pt does not count for this run
    assert [p.name for p in changed.save({"step": 1}, kid=0.9)] == ["last.pt", "best.pt"]
    with pytest.raises(CheckpointError, match=r"dropout '\(unset\)' -> 0.3"):
        Checkpoints(tmp_path, settings={**settings, "lr": 1e-4, "batch": 128, "dropout": 0.3}).load()
    assert Checkpoints(tmp_path, settings={**settings, "lr": 1e-4, "batch": 128,       # a setting added later, off
                                           "ema_rampup": None}).load()["step"] == 1
    with pytest.warns(UserWarning, match="saved without settings"):   # an old run: loaded, with a warning
        Checkpoints(tmp_path / "old").save({"step": 2})
        assert Checkpoints(tmp_path / "old", settings=settings).load()["step"] == 2
    with pytest.raises(TypeError, match="settings must be a dict of plain values"):
        Checkpoints(tmp_path, settings={"device": torch.device("cpu")})


def test_train_refuses_to_resume_with_other_settings_before_any_step(tmp_path):
    _mlp_run(tmp_path, settings={"lr": 1e-3, "seed": 0})
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(CheckpointError) as caught:
        _mlp_run(tmp_path, until=6, settings={"lr": 1e-3, "seed": 1})
    assert str(caught.value) == (f"{tmp_path / 'last.pt'} was trained with other settings (seed 0 -> 1): use a new "
                                 f"checkpoint folder for the new settings, or set RESUME = False to train from scratch "
                                 f"in this one (nothing has been deleted).")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files             # nothing trained or written
    fresh = _mlp_run(tmp_path, until=2, settings={"lr": 1e-3, "seed": 1}, resume=False)   # RESUME = False
    assert fresh.resumed_from is None and load_checkpoint(tmp_path / "last.pt")["checkpoint"]["settings"]["seed"] == 1


def _member_data_offset(path, name):
    """Where the stored (uncompressed) bytes of zip member ``name`` start in the file ``path``."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)                                    # the local header: its name and extra lengths
    return info.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")


def _flip_a_byte_of_the_optimiser(path):
    """Flip one byte inside the stored data of the optimiser's exp_avg_sq tensor; return its name in the zip."""
    state = torch.load(path, weights_only=True)
    tensor = state["opt_d"]["state"][0]["exp_avg_sq"]
    with zipfile.ZipFile(path) as archive:                   # the member whose bytes are this tensor's
        name = next(n for n in archive.namelist() if "/data/" in n and archive.read(n) == tensor.numpy().tobytes())
    data = bytearray(path.read_bytes())
    data[_member_data_offset(path, name) + 5] ^= 0x10
    path.write_bytes(bytes(data))
    return name, tensor


def test_a_flipped_byte_inside_a_stored_tensor_is_caught_by_the_crc(tmp_path):
    _run(_models(0), 2, tmp_path, every=1)                                   # previous.pt holds step 1
    name, before = _flip_a_byte_of_the_optimiser(tmp_path / "last.pt")
    after = torch.load(tmp_path / "last.pt", weights_only=True)["opt_d"]["state"][0]["exp_avg_sq"]
    assert not torch.equal(before, after)                   # torch.load alone reads the damaged value silently
    with pytest.raises(CheckpointError, match=rf"is corrupted: the bytes of {name} no longer match the checksum"):
        load_checkpoint(tmp_path / "last.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "last.pt")
    _one_sentence(str(info.value), tmp_path / "last.pt")
    with pytest.warns(UserWarning, match=r"previous.pt \(step 1\) because .*last.pt is corrupted"):
        assert Checkpoints(tmp_path).load()["step"] == 1
    assert (tmp_path / "last.damaged.pt").exists()          # kept aside, as a truncated one is
    os.replace(tmp_path / "last.damaged.pt", tmp_path / "last.pt")
    with pytest.warns(UserWarning, match=r"previous.pt \(step 1\) because .*last.pt is corrupted"):
        run = _run(_models(1), 3, tmp_path, every=1)                         # train falls back by itself
    assert run.resumed_from == 1 and run.step == 3


def test_a_checkpoint_saved_without_crcs_still_loads(tmp_path):
    torch.serialization.set_crc32_options(False)
    try:
        path = save_checkpoint(tmp_path / "nocrc.pt", {"w": torch.arange(5.0)})
    finally:
        torch.serialization.set_crc32_options(True)
    assert torch.equal(load_checkpoint(path)["w"], torch.arange(5.0))


@pytest.mark.parametrize("error", [RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0"),
                                   OSError(28, "No space left on device")])
def test_a_full_disk_during_a_save_is_one_sentence_and_loses_nothing(tmp_path, monkeypatch, error):
    manager = Checkpoints(tmp_path)
    manager.save({"step": 1})
    manager.save({"step": 2})
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise error

    monkeypatch.setattr(torch, "save", full_disk)
    for save in (lambda: manager.save({"step": 3}), lambda: save_checkpoint(tmp_path / "last.pt", {"step": 3})):
        with pytest.raises(CheckpointError, match=r"last.pt could not be written because its folder .* is full "
                                                  r"or not writable .*: the checkpoint already there is untouched"
                           ) as info:
            save()
        _one_sentence(str(info.value), tmp_path / "last.pt")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "previous.pt"]     # no temporary file left
    monkeypatch.setattr(torch, "save", real_save)
    assert [load_checkpoint(tmp_path / n)["step"] for n in ("last.pt", "previous.pt")] == [2, 1]
    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointError, match=r"new.pt could not be written .*: nothing was left behind"):
        save_checkpoint(tmp_path / "new.pt", {"step": 3})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "previous.pt"]


def test_another_error_inside_a_save_is_not_called_a_full_disk(tmp_path, monkeypatch):
    def broken(obj, f, *args, **kwargs):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(RuntimeError, match="^CUDA error"):
        save_checkpoint(tmp_path / "last.pt", {"step": 1})
    assert list(tmp_path.iterdir()) == []


def test_random_bytes_are_not_a_checkpoint_rather_than_pickled_objects(tmp_path):
    noise = bytearray(random.Random(0).randbytes(4096))
    noise[0] = 0x17                                          # not a pickle's first byte (0x80), not a zip's "PK"
    (tmp_path / "noise.pt").write_bytes(bytes(noise))
    with pytest.raises(CheckpointError, match=r"is not a PyTorch checkpoint: it is neither the zip archive nor the "
                                              r"pickle that torch.save writes") as info:
        load_checkpoint(tmp_path / "noise.pt")
    assert "pickled Python objects" not in str(info.value)
    _one_sentence(str(info.value), tmp_path / "noise.pt")


def test_a_folder_passed_to_load_checkpoint_is_named_a_folder_with_the_files_to_pass(tmp_path):
    Checkpoints(tmp_path, keep_best_by="fid").save({"step": 1}, fid=3.0)
    with pytest.raises(IsADirectoryError, match=r"is a folder, not a checkpoint file: pass one of its checkpoint "
                                                r"files \(last.pt, best.pt\), e.g. .*last.pt\.$") as info:
        load_checkpoint(tmp_path)
    assert "does not exist" not in str(info.value)
    _one_sentence(str(info.value), tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder, not a checkpoint file: it holds no .pt file"):
        load_checkpoint(tmp_path / "empty")


@pytest.mark.skipif(os.name != "posix", reason="file modes and umask are POSIX")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_checkpoints_get_the_mode_a_plain_open_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = save_checkpoint(tmp_path / "one.pt", {"step": 1})
        written = Checkpoints(tmp_path / "run", keep_best_by="fid").save({"step": 1}, fid=1.0)
        (tmp_path / "plain").write_bytes(b"")
    finally:
        os.umask(old)
    assert {oct(p.stat().st_mode & 0o777) for p in [path, *written, tmp_path / "plain"]} == {oct(mode)}


def test_a_keep_best_by_the_evaluation_does_not_return_is_refused_naming_what_it_does(tmp_path):
    manager = Checkpoints(tmp_path, keep_best_by="kid")
    manager.save({"step": 1})                                # a save without metrics is fine
    with pytest.raises(ValueError) as info:
        manager.save({"step": 2}, fid=40.0, kid_mean=0.03, kid_std=0.01)
    assert str(info.value) == ("keep_best_by='kid' is not among the evaluation's results (fid, kid_mean, kid_std): "
                               "pick one of them, e.g. keep_best_by='kid_mean'.")
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 1 and not (tmp_path / "best.pt").exists()


class NaNAt(NonSaturatingLoss):
    """BCE that is NaN at D update number ``bad`` (a learning rate blowing up, say); ``once``: only that time (a
    passing fault). The count lives outside the loss's state, so a resumed run does not replay it."""

    def __init__(self, bad, once=False):
        super().__init__()
        self.calls, self.bad, self.once = 0, bad, once

    def discriminator_loss(self, D, real, fake, scale=1.0):
        self.calls += 1
        loss, stats = super().discriminator_loss(D, real, fake, scale)
        nan = self.calls == self.bad if self.once else self.calls >= self.bad
        return (loss * float("nan") if nan else loss), stats


def test_nan_stops_before_anything_nan_is_saved(tmp_path):
    parts = _models(0)
    with pytest.raises(TrainingDiverged) as info:
        _run(parts, 10, tmp_path, loss=NaNAt(5), every=2)
    assert str(info.value).startswith("training diverged at step 5: loss_d = nan")
    assert str(info.value).endswith(f"Nothing NaN was saved: the last checkpoint in {tmp_path} (step 4) is still "
                                    f"good.")
    assert [load_checkpoint(tmp_path / n)["step"] for n in ("last.pt", "previous.pt")] == [4, 2]   # no save at 5
    for name in ("last.pt", "previous.pt"):
        state = load_checkpoint(tmp_path / name)
        tensors = [*state["G"].values(), *state["D"].values(), *state["run"]["callbacks"]["EMA"].values()]
        assert all(torch.isfinite(t).all() for t in tensors if t.is_floating_point())
        assert all(math.isfinite(v) for values in state["run"]["history"].values() for v in values)
    assert not torch.isfinite(parts[1][0].weight).all()                      # D itself did turn NaN


def test_resuming_after_a_passing_nan_goes_on_as_if_it_never_happened(tmp_path):
    """After TrainingDiverged, the same call again resumes from step 4's checkpoint (weights, optimisers, callbacks,
    random state) and trains on exactly as a run that never met the NaN."""
    straight_parts = _models(0)
    straight = _run(straight_parts, 8, tmp_path / "straight", every=2)
    parts = _models(0)
    loss = NaNAt(5, once=True)
    with pytest.raises(TrainingDiverged, match=r"diverged at step 5: loss_d = nan.*\(step 4\) is still good"):
        train(*parts[:4], _batches(), loss, _noise, 8, options=QUIET,
              callbacks=[*parts[4], Checkpoints(tmp_path / "nan", every=2)])
    run = train(*parts[:4], _batches(), loss, _noise, 8, options=QUIET,
                callbacks=[*parts[4], Checkpoints(tmp_path / "nan", every=2)])
    assert run.step == 8 and run.resumed_from == 4 and run.warnings == []
    assert run.history == straight.history and [s for s, _ in parts[4][2].samples] == [2, 4, 6, 8]
    _assert_same_run(straight_parts, parts)
