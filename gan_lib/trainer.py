"""Train a lesson's recipe from the shell, on one device or several GPUs, through the notebooks' own code path.

    python -m gan_lib.trainer --recipe dcgan64 --data faces/ --out runs/dcgan64 --steps 12000
    torchrun --nproc_per_node 2 -m gan_lib.trainer --recipe dcgan64 --data faces/ --out runs/dcgan64 --steps 12000
    python -m gan_lib.trainer --recipe dcgan64 --data faces/ --out runs/dcgan64 --steps 20000 --resume

Faces come from ``gan_lib.images.load_faces`` (``--data`` omitted: the folders lesson 03 looks in), batches from
``ImageBatches``, the model, optimisers and loss from ``gan_lib.recipes``, and the loop is ``gan_lib.train.train``
with a ``CheckpointManager``. ``--batch`` is the batch of one step for all processes together: under torchrun each
of N ranks takes batch/N images (see ``gan_lib.distributed``), so the run follows the one-process recipe. ``--out``
receives ``run.json`` (the settings), ``checkpoints/`` (last.pt, previous.pt), ``samples/`` (fixed-noise grids
every ``--sample-every`` steps) and ``grid.png`` (the final grid); ``load_run(out)`` reads it back in a notebook.
``--steps`` is the step to reach: ``--resume`` continues the run in ``--out`` up to it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torchvision.utils import save_image

from gan_lib import distributed
from gan_lib.checkpoints import CheckpointManager, load_checkpoint, restore_training_state
from gan_lib.fast import ImageBatches, configure_device
from gan_lib.images import load_faces
from gan_lib.recipes import RECIPES, build
from gan_lib.runtime import seed_everything
from gan_lib.train import sample, train


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gan_lib.trainer", description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", required=True, choices=list(RECIPES), help="the lesson's recipe (gan_lib.recipes)")
    p.add_argument("--out", required=True, type=Path, help="folder for run.json, checkpoints/, samples/, grid.png")
    p.add_argument("--data", default=None, help="folder of face images (default: where lesson 03 looks)")
    p.add_argument("--steps", type=int, default=None, help="generator step to reach (default: the lesson's)")
    p.add_argument("--batch", type=int, default=None, help="images per step, all ranks together (default: lesson)")
    p.add_argument("--width", type=int, default=64, help="channels of G's last and D's first layer")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--resume", action="store_true", help="continue the run already in --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-every", type=int, default=500, help="write a fixed-noise grid every N steps")
    p.add_argument("--checkpoint-every", type=int, default=None, help="default: once per pass over the data")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--device", default=None, help="e.g. cpu; default: the GPU (rank r: GPU r) if there is one")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--traceback", action="store_true", help="on an error, show the full traceback")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Train as ``args`` say; return the history (every rank returns its own)."""
    device = distributed.setup(args.device)
    rank, ranks = distributed.rank(), distributed.world_size()
    folder = args.out / "checkpoints"
    if (folder / "last.pt").exists() and not args.resume:
        raise FileExistsError(f"{args.out} already holds a run: add --resume to continue it, or pick another --out.")
    seed_everything(args.seed)
    recipe = build(args.recipe, device, width=args.width)
    steps = recipe.steps if args.steps is None else args.steps
    batch = args.batch or recipe.batch
    if batch % ranks:
        raise ValueError(f"--batch {batch} does not split evenly over {ranks} processes: pass a multiple of {ranks}.")
    with distributed.main_first():                 # rank 0 downloads (if it must) before the others look
        faces, source = load_faces(args.data, size=recipe.image_size, limit=args.limit)
    precision = configure_device(device, args.precision)
    batches = ImageBatches(faces.images_uint8, batch // ranks, device=device, flip=True, seed=args.seed,
                           rank=rank, world_size=ranks)
    fixed_noise = recipe.noise(64, generator=torch.Generator().manual_seed(args.seed))   # the same on every rank
    manager = CheckpointManager(folder, every=args.checkpoint_every or len(batches))
    with distributed.main_first():  # rank 0 first: resume() tidies the folder (temporary files of a crash)
        history, state = None, manager.resume(map_location=device) if args.resume else None
    if state is not None:           # under DDP every rank loads it; the random state is rank 0's, so not restored
        restored = restore_training_state(state, recipe.G, recipe.D, recipe.opt_g, recipe.opt_d,
                                          extras={"data": batches}, rng=ranks == 1)
        history, fixed_noise = restored["history"], restored["fixed_noise"]
    start = history["step"] if history else 0
    if ranks > 1:                   # each rank its own noise, seeded from (seed, rank, step)
        seed_everything(args.seed * 1_000_003 + 7919 * rank + start)
    if distributed.is_main():
        args.out.mkdir(parents=True, exist_ok=True)
        settings = {"recipe": recipe.name, "width": args.width, "batch": batch, "processes": ranks,
                    "device": device.type, "precision": precision, "seed": args.seed, "data": source}
        (args.out / "run.json").write_text(json.dumps(settings, indent=1))
        print(f"{recipe.name} on {ranks} process(es), {device.type}, {precision}, batch {batch} "
              f"({batch // ranks} per process); {source}; from step {start} to {steps}", flush=True)
    started = time.perf_counter()
    history = train(distributed.wrap(recipe.G, device), distributed.wrap(recipe.D, device), recipe.opt_g,
                    recipe.opt_d, batches, recipe.loss, recipe.noise, steps=max(0, steps - start),
                    fixed_noise=fixed_noise, sample_every=args.sample_every, history=history, device=device,
                    precision=precision, checkpoints=manager, extras={"data": batches},
                    sample_dir=args.out / "samples", progress=not args.no_progress, **recipe.train_options)
    seconds, trained = time.perf_counter() - started, history["step"] - start
    if distributed.is_main():
        save_image(sample(recipe.G, fixed_noise), args.out / "grid.png", nrow=8, normalize=True, value_range=(-1, 1))
        print(f"trained steps {start}-{history['step']} in {seconds:.0f} s "
              f"({trained * batch * recipe.train_options.get('d_steps', 1) / max(seconds, 1e-9):,.0f} real "
              f"images/s over all processes); checkpoints in {folder}, last grid {args.out / 'grid.png'}", flush=True)
    return history


def load_run(out, device="cpu", checkpoint: str = "last.pt"):
    """(G, D, history) of the run the trainer wrote in ``out``, G and D in eval mode, e.g. to sample in a notebook.
    ``history["samples"]`` holds the fixed-noise grids ``(step, images)``."""
    out = Path(out)
    if not (out / "run.json").is_file():
        raise FileNotFoundError(f"{out} holds no run.json: pass the --out folder of a gan_lib.trainer run.")
    settings = json.loads((out / "run.json").read_text())
    recipe = build(settings["recipe"], device, width=settings["width"])
    state = load_checkpoint(out / "checkpoints" / checkpoint, map_location=device)
    recipe.G.load_state_dict(state["G"])
    recipe.D.load_state_dict(state["D"])
    history = defaultdict(list, state["history"], samples=[(int(s), images) for s, images in state["samples"]])
    return recipe.G.eval(), recipe.D.eval(), history


def _peer_gone(err: Exception) -> bool:
    """True for the error a rank gets when another rank has died under it (a broken collective)."""
    return isinstance(err, torch.distributed.DistError) or any(
        word in str(err) for word in ("Connection reset by peer", "Connection closed by peer", "/gloo/", "NCCL"))


def main(argv=None) -> int:
    """Run the command; on an error print one sentence naming the rank and the error, and return 1."""
    args = parse_args(argv)
    try:
        run(args)
    except Exception as err:  # noqa: BLE001 - one sentence instead of a traceback per rank
        if args.traceback:
            raise
        said = str(err).strip().splitlines()[0].rstrip(".") if str(err).strip() else ""
        who = f"rank {distributed.rank()} of {distributed.world_size()}" if distributed.world_size() > 1 else ""
        if who and _peer_gone(err):
            print(f"gan_lib.trainer: {who} stopped because another rank failed (its message says why).",
                  file=sys.stderr, flush=True)
        else:
            print(f"gan_lib.trainer: {who + ' ' if who else ''}failed: {type(err).__name__}: {said} (--traceback "
                  f"shows where){'; torchrun stops the other ranks' if who else ''}.", file=sys.stderr, flush=True)
        return 1
    distributed.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
