"""Lesson 05's ablation: each ingredient added in turn, every row trained for the same wall-clock budget on the shared
real faces, scored with gan_lib.eval.evaluate beside the real-vs-real floor at the same N.

    python benchmarks/lesson05_ablation.py                  # the lesson's full mode on this machine (see below)
    python benchmarks/lesson05_ablation.py --all-rows       # on a CPU, the three StyleGAN2-style rows too
    python benchmarks/lesson05_ablation.py --pixels         # scored on pooled pixels (no Inception: fast)
    python benchmarks/lesson05_ablation.py --compare-augment  # gan_lib's DiffAugment vs kornia (needs `pip install kornia`)

It runs notebooks/05_modern_gan.ipynb headless in full mode (the numbers are the lesson's own) and prints its table:
on a GPU the lesson's GPU settings (eight rows of 300 s, widths 64/32, N = 1,000), without one its CPU budget (the
settings marked ``cpu=``: the five DCGAN rows). Every run trains from scratch (no checkpoint folder) and without the
live view, whose redraws would eat into a row's budget. ``benchmarks/cpu_budget.py 05`` runs the lesson as a
student's "Run all" does (live view included) and times the whole notebook.
"""
import argparse
import sys
import time
from pathlib import Path

import torch

from gan_lib.recipes import LESSON_05_ROWS
from gan_lib.teach.lessons import run_notebook

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "data" / "anime-faces-64"
ROWS = list(LESSON_05_ROWS)                  # one ingredient per row, all eight


def compare_augment(batch: int = 64, size: int = 64, repeats: int = 20) -> None:
    """Time gan_lib's DiffAugment against kornia's closest pipeline; count the input pixels that get a gradient."""
    import kornia
    import kornia.augmentation as K

    from gan_lib.losses import DiffAugment
    torch.manual_seed(0)
    x = torch.rand(batch, 3, size, size) * 2 - 1                        # (B, 3, S, S) in [-1, 1]
    ours = DiffAugment("color,translation,cutout", p=1.0)
    theirs = K.AugmentationSequential(                                  # kornia wants [0, 1] images
        K.ColorJiggle(brightness=0.5, contrast=0.5, saturation=1.0, p=1.0),
        K.RandomAffine(degrees=0, translate=(0.125, 0.125), p=1.0),
        K.RandomErasing(scale=(0.25, 0.25), ratio=(1.0, 1.0), value=0.0, p=1.0))
    print(f"batch {batch} x 3 x {size} x {size}, {torch.get_num_threads()} threads, mean of {repeats} runs")
    for name, aug in (("gan_lib DiffAugment", ours), (f"kornia {kornia.__version__}", lambda t: theirs(t * 0.5 + 0.5))):
        def forward_backward():
            y = x.clone().requires_grad_(True)
            aug(y).square().sum().backward()
            return y.grad
        times = {}
        for label, fn in (("forward", lambda: aug(x)), ("forward+backward", forward_backward)):
            fn()
            started = time.perf_counter()
            for _ in range(repeats):
                fn()
            times[label] = (time.perf_counter() - started) / repeats * 1000
        grad = forward_backward()
        print(f"{name:22s} forward {times['forward']:6.1f} ms  forward+backward {times['forward+backward']:6.1f} ms  "
              f"pixels with a gradient {float((grad != 0).float().mean()):.0%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all-rows", action="store_true", help="all eight rows, also on a CPU")
    parser.add_argument("--budget", type=float, default=None, help="seconds per row (default: the lesson's)")
    parser.add_argument("--pixels", action="store_true", help="score on pooled pixels instead of Inception")
    parser.add_argument("--hinge", action="store_true", help="add the optional hinge row")
    parser.add_argument("--grid", default=None, help="save the rows' sample grids to this .png")
    parser.add_argument("--compare-augment", action="store_true")
    args = parser.parse_args()
    if args.compare_augment:
        compare_augment()
        return 0
    if not FACES.is_dir():
        print(f"{FACES} is missing: this benchmark needs the shared real faces.")
        return 2
    parameters = {"DATA_DIR": str(FACES), "GRID_PATH": args.grid, "LIVE_EVERY": None, "CHECKPOINT_DIR": None,
                  "SUBMISSION_DIR": str(ROOT / "runs" / "05_ablation_submission")}
    if args.all_rows or args.hinge:                         # else the lesson's own rows (on a CPU: the DCGAN rows)
        parameters["ROWS"] = ROWS + ["+ hinge"] * args.hinge
    if args.pixels:
        parameters["FEATURES"] = "pixels"
    if args.budget is not None:
        parameters["BUDGET_S"] = args.budget
    started = time.perf_counter()
    r = run_notebook(ROOT / "notebooks" / "05_modern_gan.ipynb", smoke=False, timeout=7200, parameters=parameters)
    print(f"{r['device']}, {r['precision']}, {r['budget_s']:.0f} s per row, features: {r['features']}; "
          f"{time.perf_counter() - started:.0f} s in all")
    print(r["table"])
    print(f"best row (lowest KID of the rows that draw faces): {r['best']}; submission valid: {r['submission_valid']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
