"""Lesson 04's gradient-norm study on the CPU: per-layer critic gradient norms under clipping and the penalty.

Lesson 04's recipes (``gan_lib.recipes.build("wgan", variant=...)``) at width 16, layer-norm critic, batch 32,
5 critic steps per generator step (2 for HW6's strong baseline: clip 1.0, RMSprop 1e-4), STEPS generator steps
(default 300) on the shared real faces (or the offline fallback); prints the per-layer norms averaged over the
last 100 steps (``run.history["grad_norms_d"]``).

    python benchmarks/lesson04_grad_norm_study.py [--steps 300] [--only "HW6 strong"]
"""
import argparse
import dataclasses

import numpy as np
from torch.utils.data import DataLoader

from gan_lib import seed_everything
from gan_lib.data import infinite, load_faces
from gan_lib.recipes import build
from gan_lib.train import train

RECIPES = {"weight clipping": "WGAN (clip 0.01)", "gradient penalty": "WGAN-GP",   # name: lesson 04's variant
           "HW6 strong": "WGAN (HW6: clip 1.0)"}                                  # HW6's own settings: 2 critic steps

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--only", nargs="*", default=list(RECIPES),
                        help=f"recipes to run (default all: {list(RECIPES)})")
    args = parser.parse_args()
    faces, source = load_faces(size=64, limit=4000, allow_download=False)
    print("data:", source)
    loader = DataLoader(faces, batch_size=32, shuffle=True, drop_last=True)
    for name in args.only:
        seed_everything(0)
        r = build("wgan", "cpu", variant=RECIPES[name], width=16, batch=32, n_critic=5, critic_norm="layer",
                  record_grad_norms=True)
        run = train(r.G, r.D, r.opt_g, r.opt_d, infinite(loader), r.loss, r.noise, until=args.steps,
                    options=dataclasses.replace(r.options, progress=False))
        norms = np.asarray(run.history["grad_norms_d"][-100:]).mean(0)
        print(f"{name:17s} per-layer gradient norms (input side first): " + "  ".join(f"{v:.3g}" for v in norms))
