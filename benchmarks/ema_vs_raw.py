"""The raw G against the averaged (EMA) G of finished runs of lesson 03 or 05, by AFD and diversity on the same
noise.

    python benchmarks/ema_vs_raw.py notebooks/runs/03_dcgan [--n 500]       # lesson 03's CHECKPOINT_DIR
    python benchmarks/ema_vs_raw.py notebooks/runs/05_rows/*                # each row of lesson 05

The models are rebuilt with ``gan_lib.recipes.build`` from the settings saved in each ``DIR/last.pt`` (the recipe,
size, widths, ingredients, EMA half-life), and the averaged G is the checkpoint's ``EMA`` callback state; a run
without one (lesson 05's DCGAN row) prints its raw G alone. Without the face detector AFD is left out.
"""
import argparse
import inspect
import sys
from pathlib import Path

import torch

from gan_lib.checkpoints import load_checkpoint
from gan_lib.explore import sample_seeded
from gan_lib.eval.image_metrics import diversity, face_detection_rate, load_face_cascade
from gan_lib.recipes import RECIPES, build


def generators(path: Path) -> tuple[int, dict]:
    """The step and the generators ({"raw G": G, "averaged G": EMA's G}) saved in ``path``."""
    state = load_checkpoint(path)
    settings = state["checkpoint"]["settings"] or {}
    if settings.get("recipe") not in RECIPES:
        raise SystemExit(f"{path} was not saved by a gan_lib.recipes run (settings: {settings}).")
    known = set(inspect.signature(RECIPES[settings["recipe"]]).parameters) - {"device"}
    recipe = build(settings["recipe"], "cpu", **{key: value for key, value in settings.items() if key in known})
    recipe.G.load_state_dict(state["G"])
    found = {"raw G": recipe.G}
    if recipe.ema is not None and "EMA" in state["run"]["callbacks"]:
        recipe.ema.load_state_dict(state["run"]["callbacks"]["EMA"])
        found["averaged G"] = recipe.ema.module
    return state["step"], found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="run folders, each with a last.pt")
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    try:
        cascade = load_face_cascade()
    except Exception as error:  # noqa: BLE001 - the detector is optional
        print(f"no face detector ({error}): AFD left out")
        cascade = None
    print(f"torch {torch.__version__}; {args.n} images per generator (noise seed 1)")
    for folder in args.folders:
        step, found = generators(folder / "last.pt")
        for name, G in found.items():
            images = sample_seeded(G, args.n, seed=1)                               # (n, 3, S, S)
            afd = f"AFD {face_detection_rate(images, cascade):.3f}  " if cascade is not None else ""
            print(f"{folder.name:18s} step {step:5d}  {name:11s} {afd}diversity {diversity(images)['diversity']:.3f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
