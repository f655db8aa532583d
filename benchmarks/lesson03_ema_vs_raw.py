"""Lesson 03: the raw G against the averaged (EMA) G of one checkpoint, by AFD and diversity on the same noise.

    python benchmarks/lesson03_cpu_budget.py --steps 2400 --checkpoints DIR   # trains and checkpoints lesson 03
    python benchmarks/lesson03_ema_vs_raw.py DIR [--n 500] [--width 32]       # then compares its two generators
"""
import argparse
import sys
from pathlib import Path

from gan_lib.checkpoints import load_checkpoint
from gan_lib.explore import sample_seeded
from gan_lib.eval.image_metrics import diversity, face_detection_rate, load_face_cascade
from gan_lib.models import dcgan
from gan_lib.train import make_ema


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="lesson 03's CHECKPOINT_DIR (its last.pt holds G and the EMA)")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    state = load_checkpoint(Path(args.folder) / "last.pt")
    G = dcgan(args.size, 100, args.width, args.width)[0]
    G.load_state_dict(state["G"])
    ema = make_ema(dcgan(args.size, 100, args.width, args.width)[0])
    ema.load_state_dict(state["extras"]["ema"])
    cascade = load_face_cascade()
    print(f"step {state['step']}, {args.n} faces each (noise seed 1)")
    for name, generator in (("raw G", G), ("averaged G", ema.module)):
        images = sample_seeded(generator, args.n, seed=1)                           # (n, 3, S, S)
        print(f"{name:12s} AFD {face_detection_rate(images, cascade):.3f}  diversity "
              f"{diversity(images)['diversity']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
