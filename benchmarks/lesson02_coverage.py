"""Lesson 02 target check: run the notebook in full mode on the CPU with the offline 2,000-digit subset.

Target (issue 3): training within 5 minutes on 2 cores; 10 of 10 digits covered; every class between 4% and
16% of 1,000 generated digits. Also prints the classifier Fréchet distance beside the real-vs-real value.
Exit status 1 when a target is missed.

    python benchmarks/lesson02_coverage.py [--seeds 0 1 2] [--steps 4000]
"""
import argparse
import sys
import time
from pathlib import Path

from gan_lib.teach.lessons import run_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_mnist_mlp_gan.ipynb"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="override the notebook's STEPS")
    args = parser.parse_args()
    overrides = {"STEPS": args.steps} if args.steps else {}

    rows = []
    print(f"{'seed':>4s} {'covered':>7s} {'min %':>6s} {'max %':>6s} {'FD':>7s} {'real-real FD':>12s} "
          f"{'train s':>8s} {'notebook s':>10s}")
    for seed in args.seeds:
        t0 = time.perf_counter()
        r = run_notebook(NOTEBOOK, parameters={"SEED": seed, "MNIST_DOWNLOAD": False, "CHECKPOINT_DIR": None, **overrides},
                         smoke=False, timeout=900)
        r["notebook_seconds"] = time.perf_counter() - t0
        rows.append(r)
        print(f"{seed:4d} {r['covered']:7d} {100 * r['min_share']:6.1f} {100 * r['max_share']:6.1f} {r['fd']:7.1f} "
              f"{r['fd_real_vs_real']:12.1f} {r['train_seconds']:8.1f} {r['notebook_seconds']:10.1f}", flush=True)
    print("data:", rows[0]["source"])
    checks = {
        "10 of 10 classes covered": all(r["covered"] == 10 for r in rows),
        "every class between 4% and 16%": all(r["min_share"] >= 0.04 and r["max_share"] <= 0.16 for r in rows),
        "training within 300 s": all(r["train_seconds"] <= 300 for r in rows),
    }
    for name, ok in checks.items():
        print(("PASS " if ok else "FAIL ") + name)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
