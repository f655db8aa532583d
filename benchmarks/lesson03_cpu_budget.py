"""Lesson 03 on a CPU budget: train the 64 px DCGAN on the shared real faces and print AFD and diversity.

The budget (issue 4 leaves it to us): width 32 instead of 64, batch 64, STEPS generator updates (default 400),
on ../shared/data/anime-faces-64 (10,000 real faces). It runs the lesson notebook itself, so the numbers are
what a student would see with these settings. Full-mode numbers need a GPU (the notebook's defaults).

    python benchmarks/lesson03_cpu_budget.py [--steps 400] [--width 32]
"""
import argparse
import sys
import time
from pathlib import Path

from gan_lib.lessons import run_notebook

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "data" / "anime-faces-64"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    if not FACES.is_dir():
        print(f"{FACES} is missing: this benchmark needs the shared real faces.")
        return 2
    t0 = time.perf_counter()
    r = run_notebook(ROOT / "notebooks" / "03_anime_dcgan.ipynb", smoke=False, timeout=3600, parameters={
        "DATA_DIR": str(FACES), "STEPS": args.steps, "WIDTH": args.width, "BATCH": args.batch,
        "FAIL_STEPS": 10, "SAMPLE_EVERY": 100, "N_EVAL": 500, "CHECKPOINT_DIR": None,
        "SUBMISSION_DIR": "runs/benchmark_submission"})
    print(f"device cpu, {args.steps} steps of batch {args.batch}, width {args.width}: "
          f"training {r['train_seconds']:.0f} s, whole notebook {time.perf_counter() - t0:.0f} s")
    print(f"AFD generated {r.get('afd', float('nan')):.3f}   real {r.get('afd_real', float('nan')):.3f}")
    print(f"diversity generated {r['diversity']:.3f}   real {r['real_diversity']:.3f}")
    print(f"submission valid: {r['submission_valid']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
