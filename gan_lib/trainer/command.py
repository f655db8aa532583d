"""Train a lesson's recipe from the shell, on one device or several GPUs, through the notebooks' own code path.

    python -m gan_lib.trainer --recipe dcgan64 --data faces/ --out runs/dcgan64 --steps 12000
    torchrun --nproc_per_node 2 -m gan_lib.trainer --recipe dcgan64 --data faces/ --out runs/dcgan64 --steps 12000
    python -m gan_lib.trainer --recipe dcgan64 --data faces/ --out runs/dcgan64 --steps 20000 --resume

Faces come from ``gan_lib.images.load_faces`` (``--data`` omitted: the folders lesson 03 looks in), batches from
``ImageBatches``, the model, optimisers and loss from ``gan_lib.recipes``, and the loop is ``gan_lib.train.train``
with a ``CheckpointManager``. ``--batch`` is the batch of one step for all processes together: under torchrun each
of N ranks takes batch/N images (see ``gan_lib.trainer.distributed``), so the run follows the one-process recipe. ``--out``
receives ``run.json`` (the settings), ``checkpoints/`` (last.pt, previous.pt), ``samples/`` (fixed-noise grids
every ``--sample-every`` steps) and ``grid.png`` (the final grid); ``load_run(out)`` reads it back in a notebook.
``--steps`` is the step to reach: ``--resume`` continues the run in ``--out`` up to it (a run already there says
so, trains nothing and exits 0), and refuses a run that was trained with another recipe, width, batch, seed or
data. A fresh run refuses a folder that holds any checkpoint; ``--out/trainer.lock`` (pid and host) keeps a second
trainer out while one runs. Bad input (an option out of range, such a folder) prints ``error: <sentence>`` and
exits 2; a failure while training prints one sentence and exits 1.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torchvision.utils import save_image

from gan_lib.trainer import distributed
from gan_lib.checkpoints import CheckpointError, CheckpointManager, load_checkpoint, restore_training_state
from gan_lib.fast import ImageBatches, configure_device
from gan_lib.images import load_faces
from gan_lib.recipes import RECIPES, build
from gan_lib.runtime import seed_everything
from gan_lib.train import sample, train


LOCK = "trainer.lock"                      # in --out while a trainer runs there: "<pid> <host>"

# option: (smallest value, what it is), checked by parse_args before anything is written
_AT_LEAST = {"steps": (1, "the generator step to reach"), "batch": (1, "the images of one step"),
             "width": (1, "a number of channels"), "limit": (1, "the number of images to use"),
             "seed": (0, "a seed for the random number generators"),
             "sample_every": (0, "the steps between fixed-noise grids (0: none)"),
             "checkpoint_every": (1, "the steps between checkpoints")}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """Bad arguments: ``error: <sentence>`` on stderr and exit 2, without the usage block."""
        self.exit(2, f"error: {message.rstrip('.')} (--help lists the options).\n")


def parse_args(argv=None) -> argparse.Namespace:
    p = _Parser(prog="python -m gan_lib.trainer", description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", required=True, choices=list(RECIPES), help="the lesson's recipe (gan_lib.recipes)")
    p.add_argument("--out", required=True, type=Path, help="folder for run.json, checkpoints/, samples/, grid.png")
    p.add_argument("--data", default=None, help="folder of face images (default: where lesson 03 looks)")
    p.add_argument("--steps", type=int, default=None, help="generator step to reach (default: the lesson's)")
    p.add_argument("--batch", type=int, default=None, help="images per step, all ranks together (default: lesson)")
    p.add_argument("--width", type=int, default=64, help="channels of G's last and D's first layer")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--resume", action="store_true", help="continue the run already in --out (with its settings)")
    p.add_argument("--seed", type=int, default=0, help="0 to 2**32 - 1")
    p.add_argument("--sample-every", type=int, default=500, help="write a fixed-noise grid every N steps (0: never)")
    p.add_argument("--checkpoint-every", type=int, default=None, help="default: once per pass over the data")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--device", default=None, help="e.g. cpu; default: the GPU (rank r: GPU r) if there is one")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--traceback", action="store_true", help="on an error, show the full traceback")
    args = p.parse_args(argv)
    for name, (least, what) in _AT_LEAST.items():
        value = getattr(args, name)
        if value is not None and value < least:
            p.error(f"--{name.replace('_', '-')} must be >= {least} (got {value}): it is {what}")
    if args.seed >= 2**32:
        p.error(f"--seed must be < 2**32 (got {args.seed}): NumPy takes seeds from 0 to 2**32 - 1")
    return args


def _lock_owner(lock: Path) -> tuple[int, str] | None:
    """(pid, host) written in ``lock``, or None when it cannot be read (being written, or not ours)."""
    with contextlib.suppress(OSError, ValueError):
        pid, host = lock.read_text().split()
        return int(pid), host
    return None


def _alive(owner: tuple[int, str] | None) -> bool:
    """False only when ``owner`` is a process of this machine that no longer runs."""
    if owner is None or owner[1] != socket.gethostname():
        return True                            # unreadable, or another machine's: cannot tell, so assume it runs
    try:
        os.kill(owner[0], 0)                   # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:                    # it exists, as another user's process
        pass
    return True


@contextlib.contextmanager
def locked(out: Path):
    """Hold ``out/trainer.lock`` for the block, so that a second trainer on ``out`` is refused; a lock left by a
    process of this machine that no longer runs is taken over with a note. ``out`` is created if needed (and
    removed again if the block leaves it empty)."""
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise NotADirectoryError(f"--out {out} cannot be created ({err.strerror}): pass a folder path you can "
                                 f"write to.") from None
    lock, mine = out / LOCK, f"{os.getpid()} {socket.gethostname()}\n"
    for attempt in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            owner = _lock_owner(lock)
            if attempt or _alive(owner):
                who = f"process {owner[0]} on {owner[1]}" if owner else "another process"
                raise FileExistsError(f"{out} is in use by another trainer ({who}, see {lock}): wait for it to "
                                      f"finish or pass another --out (delete the lock only if no trainer runs "
                                      f"there).") from None
            print(f"note: took over {lock}, left by process {owner[0]}, which no longer runs.", file=sys.stderr)
            lock.unlink(missing_ok=True)
    with os.fdopen(fd, "w") as f:
        f.write(mine)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if lock.read_text() == mine:       # still ours
                lock.unlink()
        if created:
            with contextlib.suppress(OSError):  # only succeeds when nothing was written
                out.rmdir()


def _check_out(out: Path, resume: bool) -> None:
    """Refuse an --out that is a file, or (without --resume) one that already holds a run's checkpoints."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file, not a folder: pass the folder the run should go into.")
    held = [name for name in CheckpointManager.NAMES if (out / "checkpoints" / name).exists()]
    if held and not resume:
        raise FileExistsError(f"{out} already holds a run (checkpoints/{', '.join(held)}): add --resume to continue "
                              f"it, or pick another --out.")


def _is_finite(state: dict) -> bool:
    """True when every floating-point tensor of the state dict ``state`` is free of NaN and inf."""
    return all(torch.isfinite(t).all() for t in state.values() if torch.is_tensor(t) and t.is_floating_point())


def run(args: argparse.Namespace) -> dict:
    """Train as ``args`` say; return the history (every rank returns its own)."""
    device = distributed.setup(args.device)
    _check_out(args.out, args.resume)
    with locked(args.out) if distributed.is_main() else contextlib.nullcontext():
        return _run(args, device)


def _run(args: argparse.Namespace, device: torch.device) -> dict:
    """``run`` once --out is checked (and locked on rank 0)."""
    rank, ranks = distributed.rank(), distributed.world_size()
    folder = args.out / "checkpoints"
    seed_everything(args.seed)
    recipe = build(args.recipe, device, width=args.width)
    steps = recipe.steps if args.steps is None else args.steps
    batch = recipe.batch if args.batch is None else args.batch
    if batch % ranks:
        raise ValueError(f"--batch {batch} does not split evenly over {ranks} processes: pass a multiple of {ranks}.")
    with distributed.main_first():                 # rank 0 downloads (if it must) before the others look
        data = None if args.data is None else Path(args.data).resolve()   # the same run from any working folder
        faces, source = load_faces(data, size=recipe.image_size, limit=args.limit)
    precision = configure_device(device, args.precision)
    batches = ImageBatches(faces.images_uint8, batch // ranks, device=device, flip=True, seed=args.seed,
                           rank=rank, world_size=ranks)
    fixed_noise = recipe.noise(64, generator=torch.Generator().manual_seed(args.seed))   # the same on every rank
    ema = recipe.train_options.get("ema")
    extras = {"data": batches, **({"ema": ema} if ema is not None else {})}
    defining = {"recipe": recipe.name, "width": args.width, "batch": batch, "seed": args.seed, "data": source}
    manager = CheckpointManager(folder, every=args.checkpoint_every or len(batches), settings=defining)
    manager.RESTART = "drop --resume and pass another --out to train from scratch"
    with distributed.main_first():  # rank 0 first: resume() tidies the folder (temporary files of a crash)
        history, state = None, manager.resume(map_location=device) if args.resume else None
    if state is not None and state["step"] >= steps:
        if distributed.is_main():
            print(f"the run in {args.out} is already at step {state['step']} >= --steps {steps}: nothing was "
                  f"trained (pass a larger --steps to continue it).", flush=True)
        return restore_training_state(state, recipe.G, recipe.D, recipe.opt_g, recipe.opt_d, extras=extras,
                                      rng=False)["history"]
    if state is not None:           # under DDP every rank loads it; the random state is rank 0's, so not restored
        restored = restore_training_state(state, recipe.G, recipe.D, recipe.opt_g, recipe.opt_d, extras=extras,
                                          rng=ranks == 1)
        history, fixed_noise = restored["history"], restored["fixed_noise"]
    start = history["step"] if history else 0
    if ranks > 1:                   # each rank its own noise, seeded from (seed, rank, step)
        seed_everything(args.seed * 1_000_003 + 7919 * rank + start)
    if distributed.is_main():
        settings = {**defining, "processes": ranks, "device": device.type, "precision": precision}
        (args.out / "run.json").write_text(json.dumps(settings, indent=1))
        print(f"{recipe.name} on {ranks} process(es), {device.type}, {precision}, batch {batch} "
              f"({batch // ranks} per process); {source}; from step {start} to {steps}", flush=True)
    started = time.perf_counter()
    history = train(distributed.wrap(recipe.G, device), distributed.wrap(recipe.D, device), recipe.opt_g,
                    recipe.opt_d, batches, recipe.loss, recipe.noise, steps=steps - start,
                    fixed_noise=fixed_noise, sample_every=args.sample_every, history=history, device=device,
                    precision=precision, checkpoints=manager, extras={"data": batches},
                    sample_dir=args.out / "samples", progress=not args.no_progress, **recipe.train_options)
    seconds, trained = time.perf_counter() - started, history["step"] - start
    if distributed.is_main():
        G = recipe.G if ema is None else ema.module            # the averaged G is the one to look at
        save_image(sample(G, fixed_noise), args.out / "grid.png", nrow=8, normalize=True, value_range=(-1, 1))
        print(f"trained steps {start}-{history['step']} in {seconds:.0f} s "
              f"({trained * batch * recipe.train_options.get('d_steps', 1) / max(seconds, 1e-9):,.0f} real "
              f"images/s over all processes); checkpoints in {folder}, last grid {args.out / 'grid.png'}"
              f"{' (from the EMA of G)' if ema is not None else ''}", flush=True)
    return history


def load_run(out, device="cpu", checkpoint: str = "last.pt"):
    """(G, D, history) of the run the trainer wrote in ``out``, G and D in eval mode, e.g. to sample in a notebook.
    ``history["samples"]`` holds the fixed-noise grids ``(step, images)``. A checkpoint whose G (or EMA of G)
    holds NaN or inf raises CheckpointError."""
    out = Path(out)
    if not (out / "run.json").is_file():
        raise FileNotFoundError(f"{out} holds no run.json: pass the --out folder of a gan_lib.trainer run.")
    settings = json.loads((out / "run.json").read_text())
    recipe = build(settings["recipe"], device, width=settings["width"])
    path = out / "checkpoints" / checkpoint
    state = load_checkpoint(path, map_location=device)
    recipe.G.load_state_dict(state["G"])
    recipe.D.load_state_dict(state["D"])
    broken = [name for name, weights in (("G", state["G"]), ("the EMA of G", state["extras"].get("ema", {})))
              if not _is_finite(weights)]
    if broken:
        raise CheckpointError(f"{path} holds NaN or infinite weights in {' and '.join(broken)} (the run diverged "
                              f"before this save): load an earlier checkpoint, load_run(out, checkpoint="
                              f"'previous.pt') or checkpoint='best.pt'.")
    history = defaultdict(list, state["history"], samples=[(int(s), images) for s, images in state["samples"]])
    return recipe.G.eval(), recipe.D.eval(), history


def _peer_gone(err: Exception) -> bool:
    """True for the error a rank gets when another rank has died under it (a broken collective)."""
    return isinstance(err, torch.distributed.DistError) or any(
        word in str(err) for word in ("Connection reset by peer", "Connection closed by peer", "/gloo/", "NCCL"))


# what the command was given (options, folders, checkpoints) rather than what went wrong while training
_BAD_INPUT = (ValueError, FileExistsError, FileNotFoundError, NotADirectoryError, CheckpointError)


def main(argv=None) -> int:
    """Run the command. Bad input (an option, --out, --data, a checkpoint) prints ``error: <sentence>`` and returns
    2; any other error prints one sentence naming the rank and the error, and returns 1."""
    try:
        args = parse_args(argv)
    except SystemExit as stop:                 # argparse: --help (0) or bad arguments (2), already printed
        return stop.code
    try:
        run(args)
    except KeyboardInterrupt:                  # Ctrl-C: train() has said where it saved and how to go on
        return 130
    except Exception as err:  # noqa: BLE001 - one sentence instead of a traceback per rank
        if args.traceback:
            raise
        said = str(err).strip().splitlines()[0].rstrip(".") if str(err).strip() else ""
        who = f"rank {distributed.rank()} of {distributed.world_size()}" if distributed.world_size() > 1 else ""
        if who and _peer_gone(err):
            print(f"gan_lib.trainer: {who} stopped because another rank failed (its message says why).",
                  file=sys.stderr, flush=True)
        elif isinstance(err, _BAD_INPUT):
            print(f"error: {who + ': ' if who else ''}{said}.", file=sys.stderr, flush=True)
            return 2
        else:
            print(f"gan_lib.trainer: {who + ' ' if who else ''}failed: {type(err).__name__}: {said} (--traceback "
                  f"shows where){'; torchrun stops the other ranks' if who else ''}.", file=sys.stderr, flush=True)
        return 1
    distributed.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
