"""Lesson 03's full-mode recipe on a GPU, on the fast path: ``gan_lib.recipes.build("dcgan")`` without its averaged G
(DCGAN-64, width 64, batch 128, Adam 2e-4 (0.5, 0.999), BCE), trained to STEPS on a folder of real faces; every --eval-every steps the generator is scored by
gan_lib.eval.evaluate (FID, KID, precision/recall, AFD, diversity, memorisation; N = --n-eval against the first
--n-ref faces of the folder, the real-vs-real row first) and saved, so ``--evaluate FOLDER`` can score it again.

This drives the same gan_lib calls as the notebook (a GPU machine without Jupyter can run it):

    python benchmarks/lesson03_gpu.py --faces ../shared/data/anime-faces-64 --cascade PATH --out runs/gpu [--steps 12000]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torchvision.utils import save_image

from gan_lib import seed_everything
from gan_lib.checkpoints import load_checkpoint
from gan_lib.explore import sample_seeded
from gan_lib.data import ImageBatches
from gan_lib.eval.evaluate import compare, evaluate, feature_network, reference
from gan_lib.eval.image_metrics import load_face_cascade
from gan_lib.io.image_files import FaceFolder
from gan_lib.recipes import build
from gan_lib.runtime import configure_device
from gan_lib.train import Options, train
from gan_lib.callbacks import Watch

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", default=str(ROOT.parent / "shared" / "data" / "anime-faces-64"))
    parser.add_argument("--cascade", default=None)
    parser.add_argument("--out", default="runs/lesson03_gpu")
    parser.add_argument("--steps", type=int, default=12000)
    parser.add_argument("--eval-every", type=int, default=3000)
    parser.add_argument("--n-eval", type=int, default=1000)
    parser.add_argument("--n-ref", type=int, default=3000, help="real faces for the evaluator (N_EVAL held out)")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--evaluate", default=None, help="only evaluate the G_step*.pt saved in this folder")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.evaluate:
        evaluate_saved(Path(args.evaluate), args.faces, args.n_eval, args.n_ref, device, args.cascade)
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(0)
    faces = FaceFolder(args.faces, size=64)
    precision = configure_device(device, args.precision)
    recipe = build("dcgan", device, ema_half_life=None)   # the README's table is of the raw G
    batches = ImageBatches(faces.images_uint8, recipe.batch, device=device, flip=True, seed=0, channels_last=True)
    G, D = (m.to(memory_format=torch.channels_last) for m in (recipe.G, recipe.D))   # in place: the Adams keep them
    options, watch = Options(precision=precision, progress=False), Watch()         # one Watch for the whole run
    try:
        cascade = load_face_cascade(path=args.cascade)
    except Exception as err:  # noqa: BLE001 - e.g. OpenCV 5 on the GPU machine: evaluate later with --evaluate
        cascade = None
        print(f"AFD left for later ({type(err).__name__}: {err}); generators are saved for --evaluate")
    score = scorer(args.faces, args.n_ref, device, cascade)
    rows = {}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}, {precision}, {len(faces):,} faces")
    run, seconds = None, 0.0
    for done in range(args.eval_every, args.steps + args.eval_every, args.eval_every):
        started = time.perf_counter()
        run = train(G, D, recipe.opt_g, recipe.opt_d, batches, recipe.loss, recipe.noise, min(done, args.steps),
                    options=options, callbacks=[watch], run=run)       # until: the step to reach
        torch.cuda.synchronize() if device.type == "cuda" else None
        seconds += time.perf_counter() - started
        fake = sample_seeded(G, args.n_eval, seed=1)
        row = {"step": run.step, "seconds": round(seconds, 1), "images_per_s": round(
            run.step * recipe.batch / seconds), **score(fake)}
        rows[f"step {run.step}"] = row
        print(json.dumps(row), flush=True)
        torch.save({k: v.half() for k, v in G.state_dict().items()}, out / f"G_step{run.step}.pt")
        save_image(fake[:64], out / f"samples_step{run.step}.png", nrow=8, normalize=True,
                   value_range=(-1, 1))
    last = {key: run.history[key][-100:] for key in ("loss_d", "loss_g")}
    (out / "lesson03_gpu.json").write_text(json.dumps({"rows": rows, "warnings": run.warnings,
                                                        **{f"{key}_last100": sum(v) / len(v)
                                                           for key, v in last.items()}}))
    print(compare(rows, extra={"seconds": ("train s", "8.1f"), "images_per_s": ("img/s", "7.0f")}))
    return 0


def scorer(faces_dir: str, n_ref: int, device: torch.device, cascade):
    """``score(fake) -> dict``: gan_lib.eval.evaluate against the first ``n_ref`` faces of the folder (cached on disk)."""
    net, features = feature_network("inception", device=device)
    ref = reference(faces_dir, limit=n_ref, net=net, cascade=cascade)
    return lambda fake: {**evaluate(fake, ref, net=net), "features": features}


def evaluate_saved(folder: Path, faces_dir: str, n_eval: int, n_ref: int, device: torch.device, cascade_path) -> None:
    """Score every ``G_step*.pt`` in ``folder`` (e.g. fetched from a GPU machine without OpenCV 4) and print the table."""
    score = scorer(faces_dir, n_ref, device, load_face_cascade(path=cascade_path))
    rows = {}
    for path in sorted(folder.glob("G_step*.pt"), key=lambda p: int(p.stem[6:])):
        G = build("dcgan", device, ema_half_life=None).G
        G.load_state_dict({k: v.float() for k, v in load_checkpoint(path).items()})
        rows[path.stem] = score(sample_seeded(G, n_eval, seed=1))
    print(compare(rows))


if __name__ == "__main__":
    sys.exit(main())
