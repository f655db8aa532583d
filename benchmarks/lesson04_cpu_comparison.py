"""Lesson 04's comparison on a CPU budget: GAN, gradient-clipped GAN, WGAN and WGAN-GP on the shared faces.

The budget (issue 5 leaves it to us): 64 px, width 16, batch 32, STEPS generator updates per variant (default
150; the WGANs make 5 critic updates each), 500 images for AFD/diversity. FID/KID need Inception weights,
which cannot be downloaded here; pass --inception PATH to a local torch-fidelity weights file to add them.

    python benchmarks/lesson04_cpu_comparison.py [--steps 150] [--width 16] [--inception weights.pth]
"""
import argparse
import sys
from pathlib import Path

from gan_lib.lessons import run_notebook

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "data" / "anime-faces-64"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--inception", default=None)
    args = parser.parse_args()
    if not FACES.is_dir():
        print(f"{FACES} is missing: this benchmark needs the shared real faces.")
        return 2
    r = run_notebook(ROOT / "notebooks" / "04_wgan_gp.ipynb", smoke=False, timeout=3600, parameters={
        "DATA_DIR": str(FACES), "STEPS": args.steps, "WIDTH": args.width, "BATCH": 32, "STUDY_STEPS": 50,
        "N_EVAL": 500, "INCEPTION_WEIGHTS": args.inception, "CHECKPOINT_DIR": None})
    seconds = r.pop("seconds")
    r.pop("resumed_from", None)
    print(f"device cpu, {args.steps} generator steps per variant, width {args.width}, batch 32, 64 px")
    print(f"{'':22s} {'AFD':>6s} {'diversity':>9s} {'FID':>7s} {'KID':>7s} {'train s':>8s}")
    for name, row in r.items():
        cell = lambda key: f"{row[key]:7.3f}" if key in row else "      -"
        print(f"{name:22s} {row.get('afd', float('nan')):6.3f} {row['diversity']:9.3f} {cell('fid')} "
              f"{cell('kid_mean')} {seconds.get(name, float('nan')):8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
