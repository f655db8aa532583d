"""Training on several processes with torch.distributed: 2 ranks on the CPU with gloo, forked from the test process
(no rank imports torch again, which keeps each test to seconds). Two ranks with B/2 images each take the step one
process takes with B; checkpoints move between 1 and 2 processes; a rank that fails stops the run with one sentence.
"""
import multiprocessing
import os
import shutil
import socket
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from gan_lib.callbacks import Evaluate, Grids
from gan_lib.checkpoints import Checkpoints, load_checkpoint
from gan_lib.data import ImageBatches
from gan_lib.io.synthetic_faces import cartoon_faces
from gan_lib.losses import NonSaturatingLoss, WassersteinGPLoss
from gan_lib.train import Callback, Options, train
from gan_lib.trainer import command as trainer, distributed

pytestmark = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods() or not torch.distributed.is_available()
    or not torch.distributed.is_gloo_available(), reason="needs fork and torch.distributed with gloo (Linux)")

B = 8                                    # the batch of one step, all ranks together
TIMEOUT = 60                             # seconds a 2-rank run may take before the test fails


def _toy(seed=0):
    """A small GAN on 6-d vectors, without batch norm (each rank would normalise over its own half otherwise)."""
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 6))
    D = nn.Sequential(nn.Linear(6, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    adam = lambda m: torch.optim.Adam(m.parameters(), lr=1e-2, betas=(0.5, 0.999))
    return G, D, adam(G), adam(D), torch.randn(48, 6, generator=torch.Generator().manual_seed(1))   # (48, 6)


class SharedNoise(Callback):
    """noise(n) on rank r of N: rows r*n ... (r+1)*n - 1 of one (N*n, 4) draw per call, the same draw on every
    rank and in one process: together the ranks see the noise a single process with batch N*n sees. As a callback
    it keeps its count of calls in the checkpoint, so a resumed run (on 1 or N processes) draws the next ones."""

    def __init__(self):
        self.calls = 0

    def __call__(self, n):
        gen = torch.Generator().manual_seed(1000 + self.calls)
        self.calls += 1
        r, size = distributed.rank(), distributed.world_size()
        return torch.randn(size * n, 4, generator=gen)[r * n:(r + 1) * n]      # (n, 4)

    def state_dict(self):
        return {"calls": self.calls}

    def load_state_dict(self, state):
        self.calls = state["calls"]


def _run(until, folder=None, sample_dir=None, loss=None, d_steps=1, evaluate_every=0):
    """Train the toy GAN up to step ``until`` as this process's rank (or alone), with checkpoints in ``folder``:
    from scratch, or from the run ``folder`` already holds (Checkpoints loads it on every rank)."""
    G, D, opt_g, opt_d, data = _toy()
    batches = ImageBatches(data, B // distributed.world_size(), rank=distributed.rank(),
                           world_size=distributed.world_size())
    noise = SharedNoise()
    callbacks = [noise, Grids(torch.zeros(4, 4), every=2, folder=sample_dir)]
    if folder is not None:
        callbacks.append(Checkpoints(folder, every=2))
    if evaluate_every:
        callbacks.append(Evaluate(lambda step: {"score": float(step)}, every=evaluate_every))
    run = train(distributed.wrap(G, "cpu"), distributed.wrap(D, "cpu"), opt_g, opt_d, batches,
                loss or NonSaturatingLoss(), noise, until, options=Options(d_steps=d_steps, progress=False),
                callbacks=callbacks)
    return {"G": G.state_dict(), "D": D.state_dict(), "step": run.step, "resumed_from": run.resumed_from,
            "evals": run.evals}


def _from(checkpoint, folder):
    """A run folder whose last.pt is a copy of ``checkpoint`` (to resume a step-2 checkpoint on 1 or 2 ranks)."""
    folder.mkdir(parents=True)
    shutil.copyfile(checkpoint, folder / "last.pt")
    return folder


def _join_group(rank, port):
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE="2")
    return distributed.setup("cpu")


def _two_ranks(target, *args):
    """Run target(rank, port, *args) on 2 forked processes; return their exit codes (None: still running)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=target, args=(rank, port, *args)) for rank in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(TIMEOUT)
    codes = [p.exitcode for p in procs]
    for p in procs:
        if p.is_alive():
            p.kill()
    return codes


def _ddp_runs(rank, port, out):
    """On each rank: 4 steps from scratch (checkpoints and samples written in this rank's own folders), from the
    one-process checkpoint of step 2 on to step 4, and 2 WGAN-GP steps (double backward through DDP)."""
    _join_group(rank, port)
    results = {"scratch": _run(4, out / f"checkpoints_rank{rank}", sample_dir=out / f"samples_rank{rank}",
                               evaluate_every=2),
               "resumed": _run(4, out / "from_one_process"),
               "wgan-gp": _run(2, loss=WassersteinGPLoss(), d_steps=2)}
    torch.save(results, out / f"rank{rank}.pt")
    distributed.cleanup()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process: 4 steps straight, and 2 steps with a checkpoint; then the 2-rank runs; then one process again,
    from the 2-rank run's checkpoint of step 2 on to step 4."""
    out = tmp_path_factory.mktemp("ddp")
    single = {"straight": _run(4), "half": _run(2, folder=out / "one_process")}
    _from(out / "one_process" / "last.pt", out / "from_one_process")
    assert _two_ranks(_ddp_runs, out) == [0, 0]
    ranks = [torch.load(out / f"rank{r}.pt") for r in range(2)]
    single["from_ddp"] = _run(4, _from(out / "checkpoints_rank0" / "previous.pt", out / "from_ddp"))
    return out, single, ranks


def _assert_same(a, b, atol=1e-5):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=atol, rtol=1e-4), (key, (a[key] - b[key]).abs().max())


def test_two_ranks_with_half_batches_take_the_one_process_steps(runs):
    _, single, ranks = runs
    for r in range(2):
        assert ranks[r]["scratch"]["step"] == 4
        _assert_same(ranks[r]["scratch"]["G"], single["straight"]["G"])
        _assert_same(ranks[r]["scratch"]["D"], single["straight"]["D"])
    moved = (ranks[0]["scratch"]["G"]["0.weight"] - _run(0)["G"]["0.weight"]).abs().max()
    assert moved > 1e-3                        # the models did train: the match is not two untouched copies


def test_the_replicas_stay_identical_under_the_gradient_penalty(runs):
    _, _, ranks = runs
    for part in ("G", "D"):
        _assert_same(ranks[0]["wgan-gp"][part], ranks[1]["wgan-gp"][part], atol=0)


def test_only_rank_0_writes_and_a_2_rank_checkpoint_resumes_in_one_process(runs):
    out, single, _ = runs
    assert not (out / "checkpoints_rank1").exists() and not (out / "samples_rank1").exists()
    assert sorted(p.name for p in (out / "samples_rank0").iterdir()) == ["step_000002.png", "step_000004.png"]
    state = load_checkpoint(out / "checkpoints_rank0" / "previous.pt")
    assert state["step"] == 2 and not any(k.startswith("module.") for k in state["G"])   # the plain model's keys
    assert state["data"]["position"] == 2 * B                  # rows taken by both ranks together
    assert state["run"]["callbacks"]["SharedNoise"] == {"calls": 2} and state["run"]["evals"] == [
        {"step": 2, "score": 2.0}]
    assert single["from_ddp"]["resumed_from"] == 2 and single["from_ddp"]["step"] == 4
    _assert_same(single["from_ddp"]["G"], single["straight"]["G"])
    _assert_same(single["from_ddp"]["D"], single["straight"]["D"])


def test_only_rank_0_evaluates(runs):
    _, _, ranks = runs
    assert [e["step"] for e in ranks[0]["scratch"]["evals"]] == [2, 4]
    assert ranks[1]["scratch"]["evals"] == []                  # rank 1 trained on, it did not score the model


def test_a_one_process_checkpoint_resumes_on_two_ranks(runs):
    _, single, ranks = runs
    for r in range(2):
        assert (ranks[r]["resumed"]["resumed_from"], ranks[r]["resumed"]["step"]) == (2, 4)
        _assert_same(ranks[r]["resumed"]["G"], single["straight"]["G"])
        _assert_same(ranks[r]["resumed"]["D"], single["straight"]["D"])


def test_image_batches_split_one_permutation_over_the_ranks():
    images = torch.arange(40, dtype=torch.float32).view(40, 1)                 # (40, 1): image i holds i
    whole = ImageBatches(images, 8, seed=5)
    parts = [ImageBatches(images, 4, seed=5, rank=r, world_size=2) for r in range(2)]
    assert len(whole) == len(parts[0]) == 5
    for _ in range(7):                                                         # into the second epoch
        assert torch.equal(torch.cat([next(p) for p in parts]), next(whole))
    assert parts[0].state_dict() == parts[1].state_dict() == whole.state_dict()
    with pytest.raises(ValueError, match="need 0 <= rank < world_size"):
        ImageBatches(images, 4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="on each of 2 ranks"):
        ImageBatches(images, 30, rank=0, world_size=2)


def test_one_process_needs_no_process_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.setup("cpu") == torch.device("cpu")
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    G = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    assert distributed.wrap(G, "cpu") is G and distributed.unwrap(G) is G


def _trainer_with_a_failing_rank(rank, port, faces, out):
    """The trainer command on 2 ranks; rank 1's data breaks at its third batch. Each rank's stderr goes to a file."""
    _join_group(rank, port)
    sys.stderr = open(out / f"stderr{rank}.txt", "w", buffering=1)
    if rank == 1:
        plain = ImageBatches.__next__

        def broken(self):
            if self.position >= 2 * self.batch_size * self.world_size:
                raise OSError("injected read error")
            return plain(self)
        ImageBatches.__next__ = broken
    code = trainer.main(["--recipe", "dcgan", "--data", str(faces), "--out", str(out / "run"), "--steps", "6",
                         "--batch", "8", "--width", "4", "--no-progress"])
    sys.stderr.flush()
    os._exit(code)


def _face_folder(tmp_path):
    """16 cartoon faces as PNG files in tmp_path/faces."""
    faces = tmp_path / "faces"
    faces.mkdir()
    for i, face in enumerate(cartoon_faces(16, 64)):
        Image.fromarray(face.permute(1, 2, 0).numpy()).save(faces / f"{i}.png")
    return faces


def test_a_rank_that_fails_stops_the_others_with_one_sentence(tmp_path):
    faces = _face_folder(tmp_path)
    codes = _two_ranks(_trainer_with_a_failing_rank, faces, tmp_path)
    assert codes == [1, 1]                         # both ended (not None: nobody hangs) and both report failure
    said = [(tmp_path / f"stderr{r}.txt").read_text() for r in range(2)]
    assert "rank 1 of 2 failed: OSError: injected read error" in said[1]
    assert "failed:" not in said[0] and "rank 0 of 2 stopped because another rank failed" in said[0]
    assert "Traceback" not in said[0] + said[1]


def _trainer_on_two_ranks(rank, port, faces, out, steps):
    """The trainer command with --resume on 2 ranks; each rank's stdout and stderr go to files of their own."""
    _join_group(rank, port)
    sys.stdout = open(out / f"stdout{rank}_{steps}.txt", "w", buffering=1)
    sys.stderr = open(out / f"stderr{rank}_{steps}.txt", "w", buffering=1)
    code = trainer.main(["--recipe", "dcgan", "--data", str(faces), "--out", str(out / "run"), "--steps", str(steps),
                         "--batch", "8", "--width", "4", "--sample-every", "2", "--device", "cpu", "--no-progress",
                         "--resume"])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def test_the_command_trains_on_two_ranks_and_its_run_moves_between_1_and_2_processes(tmp_path):
    faces = _face_folder(tmp_path)
    said = lambda r, steps: (tmp_path / f"stdout{r}_{steps}.txt").read_text()           # noqa: E731
    assert _two_ranks(_trainer_on_two_ranks, faces, tmp_path, 2) == [0, 0]               # fresh: --resume, empty
    assert "dcgan on 2 process(es), cpu, fp32, batch 8 (4 per process)" in said(0, 2) and said(1, 2) == ""
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 2
    assert trainer.main(["--recipe", "dcgan", "--data", str(faces), "--out", str(tmp_path / "run"), "--steps", "3",
                         "--batch", "8", "--width", "4", "--sample-every", "2", "--device", "cpu", "--no-progress",
                         "--resume"]) == 0                                              # on in one process
    assert _two_ranks(_trainer_on_two_ranks, faces, tmp_path, 4) == [0, 0]               # and on 2 ranks again
    assert said(0, 4).count("resumed at step 3") == 1 and said(1, 4) == ""               # rank 0 speaks
    G, D, run = trainer.load_run(tmp_path / "run")
    assert run.step == 4 and run.resumed_from is None and len(run.history["loss_d"]) == 4
    assert [s for s, _ in run.callbacks["Grids"]["samples"]] == [4] and int(run.callbacks["EMA"]["n_averaged"]) == 4
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]
    assert "Traceback" not in "".join((tmp_path / f"stderr{r}_{s}.txt").read_text() for r in range(2) for s in (2, 4))
