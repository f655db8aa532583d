"""Does an EMA whose memory ramps up (StyleGAN2-ADA's ``ema_rampup``) keep lesson 05's short CPU rows varied?

    python benchmarks/ema_rampup_probe.py [--seconds 300] [--rampup 0.05] [--seed 0]

Trains lesson 05's "+ EMA" row (its CPU settings: DCGAN width 32, batch 64, a 10,000-image half-life) for
``--seconds`` of training, once, and follows three generators of the same run: the raw G, the recipe's EMA, and an
EMA whose half-life is min(10,000, rampup x images seen so far) images. Every 100 steps and at the end it prints
AFD and diversity of each on the same 300 seeded noise vectors (500 at the end). One seed per run (``--seed``). The
ramped EMA is now the kit's ``EMA(G, decay, rampup=0.05)``, lesson 05's CPU budget; the committed output came from
this script's own copy of it, whose floating-point weights follow the same arithmetic.
"""
import argparse
import sys
from pathlib import Path

import torch

from gan_lib import seed_everything
from gan_lib.callbacks import EMA, Budget
from gan_lib.eval.image_metrics import diversity, face_detection_rate, load_face_cascade
from gan_lib.explore import sample_seeded
from gan_lib.data import ImageBatches, load_faces
from gan_lib.recipes import build
from gan_lib.train import Callback, Options, train

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "anime-faces-64"


class Report(Callback):
    """AFD and diversity of each generator every ``every`` steps (paused: not training time)."""

    def __init__(self, generators: dict, cascade, every: int = 100):
        self.generators, self.cascade, self.every = generators, cascade, every

    def on_step(self, loop) -> None:
        if loop.run.step % self.every == 0:
            with loop.paused():
                report(self.generators, self.cascade, loop.run.step, 300)


def report(generators: dict, cascade, step: int, n: int) -> None:
    parts = []
    for name, G in generators.items():
        images = sample_seeded(G(), n, seed=1)                                       # (n, 3, 64, 64)
        parts.append(f"{name} AFD {face_detection_rate(images, cascade):.3f} div {diversity(images)['diversity']:.3f}")
    print(f"step {step:4d}: " + " | ".join(parts), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--rampup", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0, help="the weights' and the batches' seed")
    args = parser.parse_args()
    if not FACES.is_dir():
        print(f"{FACES} is missing: this probe needs the shared real faces.")
        return 2
    seed_everything(args.seed)
    faces, source = load_faces(FACES, size=64)
    seed_everything(args.seed)
    recipe = build("modern", "cpu", ingredients=["+ EMA"], dcgan_width=32, style_width=16, batch=64,
                   ema_half_life=10_000, augment_p=0.3)
    ramped = EMA(recipe.G, recipe.ema.decay, rampup=args.rampup)                # the kit's EMA, ramped
    cascade = load_face_cascade()
    generators = {"raw G": lambda: recipe.G, "EMA": lambda: recipe.ema.module, "ramped EMA": lambda: ramped.module}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {source}; {recipe}; rampup {args.rampup}, "
          f"seed {args.seed}")
    run = train(recipe.G, recipe.D, recipe.opt_g, recipe.opt_d,
                ImageBatches(faces.images_uint8, 64, flip=True, seed=args.seed), recipe.loss, recipe.noise, until=None,
                options=Options(progress=False),
                callbacks=[*recipe.callbacks(), ramped, Report(generators, cascade), Budget(args.seconds)])
    print(f"{run.step} steps in {run.seconds:.0f} s of training ({run.step * 64 / run.seconds:.0f} images/s)")
    report(generators, cascade, run.step, 500)
    return 0


if __name__ == "__main__":
    sys.exit(main())
