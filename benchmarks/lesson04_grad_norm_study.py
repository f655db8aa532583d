"""Lesson 04's gradient-norm study on the CPU: per-layer critic gradient norms under clipping and the penalty.

Width 16, layer-norm critic, batch 32, 5 critic steps per generator step (2 for HW6's strong baseline: clip 1.0,
RMSprop 1e-4), STEPS generator steps (default 300)
on the shared real faces (or the offline fallback); prints the per-layer norms averaged over the last 100 steps.

    python benchmarks/lesson04_grad_norm_study.py [--steps 300] [--only "HW6 strong"]
"""
import argparse

import numpy as np
import torch
from torch.utils.data import DataLoader

from gan_lib import seed_everything
from gan_lib.images import load_faces
from gan_lib.losses import WassersteinGPLoss, WassersteinLoss
from gan_lib.models import dcgan, gaussian_noise
from gan_lib.train import infinite, train

RECIPES = {  # name: (loss, optimiser, critic steps per generator step)
    "weight clipping": (WassersteinLoss(clip=0.01), lambda p: torch.optim.RMSprop(p, lr=5e-5), 5),
    "gradient penalty": (WassersteinGPLoss(), lambda p: torch.optim.Adam(p, lr=1e-4, betas=(0.0, 0.9)), 5),
    "HW6 strong": (WassersteinLoss(clip=1.0), lambda p: torch.optim.RMSprop(p, lr=1e-4), 2)}  # HW6's own settings

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--only", nargs="*", default=list(RECIPES), help=f"recipes to run (default all: {list(RECIPES)})")
    args = parser.parse_args()
    faces, source = load_faces(size=64, limit=4000, allow_download=False)
    print("data:", source)
    loader = DataLoader(faces, batch_size=32, shuffle=True, drop_last=True)
    for name, (loss, make_opt, d_steps) in ((n, RECIPES[n]) for n in args.only):
        seed_everything(0)
        G, D = dcgan(64, g_width=16, d_width=16, d_norm="layer")
        history = train(G, D, make_opt(G.parameters()), make_opt(D.parameters()), infinite(loader), loss,
                        lambda n: gaussian_noise(n, 100), steps=args.steps, d_steps=d_steps, record_grad_norms=True,
                        progress=False)
        norms = np.asarray(history["grad_norms_d"][-100:]).mean(0)
        print(f"{name:17s} per-layer gradient norms (input side first): " + "  ".join(f"{v:.3g}" for v in norms))
