"""Train a lesson's recipe from the shell, on one device or several GPUs, through the notebooks' own code path.

    python -m gan_lib.trainer --recipe dcgan --data faces/ --out runs/dcgan --steps 12000
    torchrun --nproc_per_node 2 -m gan_lib.trainer --recipe dcgan --data faces/ --out runs/dcgan --steps 12000
    python -m gan_lib.trainer --recipe dcgan --data faces/ --out runs/dcgan --steps 20000 --resume
    python -m gan_lib.trainer --recipe wgan --variant "WGAN (clip 0.01)" --out runs/wgan-clip --steps 6000

The recipes are ``gan_lib.recipes``' (``dcgan``: lesson 03, ``wgan``: lesson 04 with ``--variant``, ``modern``:
lesson 05's last row); faces come from ``gan_lib.data.load_faces`` (``--data`` omitted: the folders lesson 03
looks in), batches from ``ImageBatches``, and the loop is ``gan_lib.train.train`` with the recipe's callbacks (its
EMA of G), ``Grids`` and ``Checkpoints``, which is the one resume, as in the notebooks. ``--batch`` is the batch of
one step for all processes together: under torchrun each of N ranks takes batch/N images (see
``gan_lib.trainer.distributed``), so the run follows the one-process recipe. ``--out`` receives ``run.json`` (the
settings), ``checkpoints/`` (last.pt, previous.pt), ``samples/`` (fixed-noise grids every ``--sample-every``
steps) and ``grid.png`` (the final grid, from the EMA of G when the recipe has one); ``load_run(out)`` reads it
back in a notebook. ``--steps`` is the step to reach: ``--resume`` continues the run in ``--out`` up to it (a run
already there says so, trains nothing and exits 0), and refuses a run that was trained with other settings (the
recipe's, the batch, the seed, the data). A fresh run refuses a folder that holds any checkpoint;
``--out/trainer.lock`` (pid and host) keeps a second trainer out while one runs. Bad input (an option out of
range, such a folder) prints ``error: <sentence>`` and exits 2; a failure while training prints one sentence and
exits 1; Ctrl-C saves the last finished step, says how to go on and exits 130.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import os
import socket
import sys
from pathlib import Path

import torch
from torchvision.utils import save_image

from gan_lib.callbacks import Grids
from gan_lib.checkpoints import FORMAT, CheckpointError, Checkpoints, load_checkpoint
from gan_lib.data import ImageBatches, load_faces
from gan_lib.io.files import NAMES
from gan_lib.recipes import RECIPES, WGAN_VARIANTS, build
from gan_lib.runtime import configure_device, seed_everything
from gan_lib.train import Callback, Run, train
from gan_lib.explore import sample
from gan_lib.trainer import distributed

LOCK = "trainer.lock"                      # in --out while a trainer runs there: "<pid> <host>"
RESTART = "drop --resume and pass another --out to train from scratch"    # Checkpoints' way out, the command's

# option: (smallest value, what it is), checked by parse_args before anything is written
_AT_LEAST = {"steps": (1, "the step to reach"), "batch": (1, "the images of one step"),
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
    p.add_argument("--variant", default=None, choices=list(WGAN_VARIANTS),
                   help="--recipe wgan only: lesson 04's variant (default: WGAN-GP)")
    p.add_argument("--out", required=True, type=Path, help="folder for run.json, checkpoints/, samples/, grid.png")
    p.add_argument("--data", default=None, help="folder of face images (default: where lesson 03 looks)")
    p.add_argument("--steps", type=int, default=None, help="the step to reach (default: the recipe's)")
    p.add_argument("--batch", type=int, default=None, help="images per step, all ranks together (default: recipe)")
    p.add_argument("--width", type=int, default=64, help="channels of G's last and D's first layer (modern: G's "
                                                         "StyleGAN2 width is half of it)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--resume", action="store_true", help="continue the run already in --out (with its settings)")
    p.add_argument("--seed", type=int, default=0, help="0 to 2**32 - 1")
    p.add_argument("--sample-every", type=int, default=500, help="write a fixed-noise grid every N steps (0: never)")
    p.add_argument("--checkpoint-every", type=int, default=None, help="default: once per pass over the data")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--compile", action="store_true", help="torch.compile G and D")
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
    if args.variant is not None and args.recipe != "wgan":
        p.error(f"--variant is a setting of --recipe wgan, not of --recipe {args.recipe}: drop it, or pass "
                f"--recipe wgan")
    return args


def recipe_values(args: argparse.Namespace) -> dict:
    """What ``gan_lib.recipes.build`` gets from the command's options (the recipe's defaults for the rest)."""
    values = {"batch": args.batch} if args.batch is not None else {}
    if args.recipe == "modern":            # lesson 05's widths: the DCGAN's, and the StyleGAN2-style G's (half)
        return {**values, "dcgan_width": args.width, "style_width": max(1, args.width // 2)}
    if args.recipe == "wgan":
        values["variant"] = args.variant or "WGAN-GP"
    return {**values, "width": args.width}


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
    held = [name for name in NAMES if (out / "checkpoints" / name).exists()]
    if held and not resume:
        raise FileExistsError(f"{out} already holds a run (checkpoints/{', '.join(held)}): add --resume to continue "
                              f"it, or pick another --out.")


def _is_finite(state: dict) -> bool:
    """True when every floating-point tensor of the state dict ``state`` is free of NaN and inf."""
    return all(torch.isfinite(t).all() for t in state.values() if torch.is_tensor(t) and t.is_floating_point())


class _RankNoise(Callback):
    """Under DDP: once ``Checkpoints`` has put the saved random state back (rank 0's, on every rank), seed each rank
    from (seed, rank, step), so that the ranks draw different noise for their halves of the batch."""
    order = 9                              # on_start runs in reverse order: right after Checkpoints' (10)

    def __init__(self, seed: int):
        self.seed = seed

    def on_start(self, loop) -> None:
        seed_everything(self.seed * 1_000_003 + 7919 * distributed.rank() + loop.run.step)


def run(args: argparse.Namespace) -> Run:
    """Train as ``args`` say; return the ``Run`` (every rank its own; a finished run's, untouched, with --resume)."""
    device = distributed.setup(args.device)
    _check_out(args.out, args.resume)
    with locked(args.out) if distributed.is_main() else contextlib.nullcontext():
        return _run(args, device)


def _run(args: argparse.Namespace, device: torch.device) -> Run:
    """``run`` once --out is checked (and locked on rank 0)."""
    rank, ranks, main = distributed.rank(), distributed.world_size(), distributed.is_main()
    folder = args.out / "checkpoints"
    seed_everything(args.seed)
    recipe = build(args.recipe, device, **recipe_values(args))
    steps = recipe.steps if args.steps is None else args.steps
    batch = recipe.batch
    if batch % ranks:
        raise ValueError(f"--batch {batch} does not split evenly over {ranks} processes: pass a multiple of {ranks}.")
    with distributed.main_first():                 # rank 0 downloads (if it must) before the others look
        data = None if args.data is None else Path(args.data).resolve()   # the same run from any working folder
        faces, source = load_faces(data, size=recipe.image_size, limit=args.limit)
    precision = configure_device(device, args.precision)
    batches = ImageBatches(faces.images_uint8, batch // ranks, device=device, flip=True, seed=args.seed,
                           rank=rank, world_size=ranks)
    settings = {**recipe.settings, "seed": args.seed, "data": source}    # the batch is the recipe's setting
    checkpoints = Checkpoints(folder, every=args.checkpoint_every or len(batches), settings=settings,
                              resume=args.resume)
    checkpoints.RESTART = RESTART
    # a look before anything is written: where the run stands, and a refusal of other settings. Rank 0 first:
    # load() tidies the folder (temporary files of a crash). Checkpoints loads it again inside train().
    with distributed.main_first():
        saved = checkpoints.load() if args.resume else None
    done = Run()
    if saved is not None:
        done.load_state_dict(saved["run"])
    del saved
    if done.step >= steps:
        if main:
            print(f"the run in {args.out} is already at step {done.step} >= --steps {steps}: nothing was "
                  f"trained (pass a larger --steps to continue it).", flush=True)
        return done
    fixed_noise = recipe.noise(64, generator=torch.Generator().manual_seed(args.seed))   # the same on every rank
    callbacks = [*recipe.callbacks(), checkpoints]                                     # the EMA, if any
    if args.sample_every:                  # the newest grid in the checkpoint, each one in samples/
        callbacks.append(Grids(fixed_noise, args.sample_every, model=recipe.ema, folder=args.out / "samples",
                               keep=1))
    if ranks > 1:
        callbacks.append(_RankNoise(args.seed))
    name = f"{recipe.name} {recipe.settings['variant']!r}" if "variant" in recipe.settings else recipe.name
    if main:
        (args.out / "run.json").write_text(json.dumps({**settings, "processes": ranks, "device": device.type,
                                                       "precision": precision}, indent=1))
        print(f"{name} on {ranks} process(es), {device.type}, {precision}, batch {batch} ({batch // ranks} per "
              f"process); {source}; from step {done.step} to {steps}", flush=True)
    options = dataclasses.replace(recipe.options, precision=precision, compile=args.compile,
                                  progress=not args.no_progress)
    run = train(distributed.wrap(recipe.G, device), distributed.wrap(recipe.D, device), recipe.opt_g,
                recipe.opt_d, batches, recipe.loss, recipe.noise, until=steps, options=options, callbacks=callbacks)
    if main:
        save_image(sample(recipe.sampler, fixed_noise), args.out / "grid.png", nrow=8, normalize=True,
                   value_range=(-1, 1))
        seconds, trained = run.seconds - done.seconds, run.step - done.step
        print(f"trained steps {done.step}-{run.step} in {seconds:.0f} s "
              f"({trained * batch * options.d_steps / max(seconds, 1e-9):,.0f} real images/s over all "
              f"processes); checkpoints in {folder}, last grid {args.out / 'grid.png'}"
              f"{' (from the EMA of G)' if recipe.ema is not None else ''}", flush=True)
    return run


def load_run(out, device="cpu", checkpoint: str = "last.pt"):
    """``(G, D, run)`` of the run the trainer wrote in ``out``, in eval mode, e.g. to sample in a notebook. G is
    the one to sample from (the EMA of G when the recipe has one, as in grid.png); ``run`` is the
    ``gan_lib.train.Run`` (``run.step``, ``run.history``, ``run.seconds``; the newest fixed-noise grid is in
    ``run.callbacks["Grids"]``). A checkpoint whose G (or EMA of G) holds NaN or inf raises CheckpointError."""
    out = Path(out)
    if not (out / "run.json").is_file():
        raise FileNotFoundError(f"{out} holds no run.json: pass the --out folder of a gan_lib.trainer run.")
    settings = json.loads((out / "run.json").read_text())
    known = set(inspect.signature(RECIPES[settings["recipe"]]).parameters) - {"device"}
    recipe = build(settings["recipe"], device, **{key: value for key, value in settings.items() if key in known})
    path = out / "checkpoints" / checkpoint
    state = load_checkpoint(path, map_location=device)
    if state.get("format") != FORMAT:
        raise CheckpointError(f"{path} was written by another gan_lib version (checkpoint format "
                              f"{state.get('format')}, this one reads {FORMAT}): train the run again, or load it "
                              f"with the version that wrote it.")
    recipe.G.load_state_dict(state["G"])
    recipe.D.load_state_dict(state["D"])
    ema = state["run"]["callbacks"].get("EMA") if recipe.ema is not None else None
    if ema is not None:
        recipe.ema.load_state_dict(ema)
    broken = [name for name, weights in (("G", state["G"]), ("the EMA of G", ema or {})) if not _is_finite(weights)]
    if broken:
        raise CheckpointError(f"{path} holds NaN or infinite weights in {' and '.join(broken)} (the run diverged "
                              f"before this save): load an earlier checkpoint, load_run(out, checkpoint="
                              f"'previous.pt') or checkpoint='best.pt'.")
    run = Run()
    run.load_state_dict(state["run"])
    G = recipe.ema.module if ema is not None else recipe.G
    return G.eval(), recipe.D.eval(), run


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
