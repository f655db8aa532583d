"""Lesson 03: the raw G against the averaged (EMA) G of one checkpoint, by AFD and diversity on the same noise.

    python benchmarks/lesson03_cpu_budget.py --steps 2400 --checkpoints DIR   # trains and checkpoints lesson 03
    python benchmarks/lesson03_ema_vs_raw.py DIR [--n 500]                     # then compares its two generators

The models are rebuilt with ``gan_lib.recipes.build("dcgan", ...)`` from the settings saved in ``DIR/last.pt``
(size, width, latent size, EMA half-life), and the averaged G is the checkpoint's ``EMA`` callback state.
"""
import argparse
import inspect
import sys
from pathlib import Path

from gan_lib.checkpoints import load_checkpoint
from gan_lib.explore import sample_seeded
from gan_lib.eval.image_metrics import diversity, face_detection_rate, load_face_cascade
from gan_lib.recipes import RECIPES, build


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="lesson 03's CHECKPOINT_DIR (its last.pt holds G and the EMA)")
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    path = Path(args.folder) / "last.pt"
    state = load_checkpoint(path)
    settings = state["checkpoint"]["settings"] or {}
    if settings.get("recipe") != "dcgan" or "EMA" not in state["run"]["callbacks"]:
        print(f"{path} is not a run of lesson 03's recipe with an averaged G (settings: {settings}).")
        return 2
    known = set(inspect.signature(RECIPES["dcgan"]).parameters) - {"device"}
    recipe = build("dcgan", "cpu", **{key: value for key, value in settings.items() if key in known})
    recipe.G.load_state_dict(state["G"])
    recipe.ema.load_state_dict(state["run"]["callbacks"]["EMA"])
    cascade = load_face_cascade()
    print(f"step {state['step']}, {args.n} faces each (noise seed 1); {recipe}")
    for name, generator in (("raw G", recipe.G), ("averaged G", recipe.ema.module)):
        images = sample_seeded(generator, args.n, seed=1)                           # (n, 3, S, S)
        print(f"{name:12s} AFD {face_detection_rate(images, cascade):.3f}  diversity "
              f"{diversity(images)['diversity']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
