"""Lesson 03's keep-best, checked by FID: the averaged G the lesson kept (best.pt, by its keep-best score: KID now,
AFD x diversity before) against the last averaged G and the last raw G of the same run, each scored by gan_lib.eval.evaluate.

    python benchmarks/lesson03_kept_vs_last.py notebooks/runs/03_dcgan [--n 1000] [--reference-limit 2000]

The folder is the lesson's CHECKPOINT_DIR after a full-mode run. The reference is the first --reference-limit
shared faces (cached, the same as benchmarks/quality_curve.py's), so the numbers compare with its table; the
lesson's own final evaluation draws its reference at random from the faces it trained on.
"""
import argparse
import inspect
import sys
from pathlib import Path

import torch

from gan_lib.checkpoints import load_checkpoint
from gan_lib.eval.evaluate import feature_network, evaluate, reference
from gan_lib.explore import sample_seeded
from gan_lib.recipes import dcgan, build

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "anime-faces-64"
COLUMNS = ("fid", "kid_mean", "precision", "recall", "afd", "diversity")


def generators(path: Path) -> dict:
    """The averaged and the raw G saved in ``path``, built from the recipe settings saved with it."""
    state = load_checkpoint(path)
    settings = state["checkpoint"]["settings"]
    known = set(inspect.signature(dcgan).parameters) - {"device"}
    recipe = build("dcgan", **{key: value for key, value in settings.items() if key in known})
    recipe.G.load_state_dict(state["G"])
    recipe.ema.load_state_dict(state["run"]["callbacks"]["EMA"])
    return {"averaged": recipe.ema.module.eval(), "raw": recipe.G.eval(), "step": state["step"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--reference-limit", type=int, default=2000)
    args = parser.parse_args()
    if not FACES.is_dir():
        print(f"{FACES} is missing: this benchmark needs the shared real faces.")
        return 2
    net, features = feature_network("inception")
    ref = reference(FACES, limit=args.reference_limit, net=net)
    best, last = generators(args.folder / "best.pt"), generators(args.folder / "last.pt")
    rows = {f"kept (best.pt), averaged G, step {best['step']}": best["averaged"],
            f"last, averaged G, step {last['step']}": last["averaged"],
            f"last, raw G, step {last['step']}": last["raw"]}
    print(f"torch {torch.__version__}; {features} features; N = {args.n} generated vs the first "
          f"{ref['n']:,} shared faces")
    print(f"{'generator':40s} " + " ".join(f"{c:>9s}" for c in COLUMNS))
    result = {}
    for name, G in rows.items():
        result = evaluate(sample_seeded(G, args.n, seed=1), ref, net=net)
        print(f"{name:40s} " + " ".join(f"{result[c]:9.3f}" for c in COLUMNS), flush=True)
    print(f"{'real vs real':40s} " + " ".join(f"{result[c + '_real']:9.3f}" for c in COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
