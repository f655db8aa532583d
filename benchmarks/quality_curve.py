"""The quality curve on a CPU: FID, KID, precision, recall, AFD and diversity against minutes of training.

Lesson 03's recipe as ``gan_lib.recipes`` builds it (DCGAN at 64 px, width 32, BCE, Adam 2e-4 (0.5, 0.999)), at
batch 64 with the recipe's EMA of G (half-life 10,000 images), trains through ``gan_lib.train.train`` on the shared
real faces. When the training time (``run.seconds``, which leaves out scoring) reaches each of ``--minutes`` (a
``Budget`` callback stops the call there; the next call goes on with the same ``Run``), the averaged G is kept; after training, each kept G draws ``--n`` faces that ``gan_lib.eval.evaluate``
scores against the reference folder (its real-vs-real row at the same N printed beside). One row per seed and mark:
one seed is a demonstration, so give several (``--seeds 0 1 2``).

    python benchmarks/quality_curve.py                                   # 5, 10, 20, 30 min; N = 1,000; seed 0
    python benchmarks/quality_curve.py --seeds 0 1 2 > benchmarks/quality_curve.txt
    python benchmarks/quality_curve.py --ingredients "+ EMA" "+ DiffAugment" --augment-p 0.3   # a lesson 05 row
    python benchmarks/quality_curve.py --augment-p 0.3                   # lesson 03's CPU budget (DiffAugment p 0.3)
    python benchmarks/quality_curve.py --augment-p 0.3 --precision bf16 --channels-last   # only on a CPU with native bf16
    python benchmarks/quality_curve.py --augment-p 0.3 --steps 1055 2263 4629 6864   # on any CPU: the steps at which
                                        # seed 0 reached 5, 10, 20 and 30 min in benchmarks/quality_curve_diffaugment.txt
    python benchmarks/quality_curve.py --augment-p 0.3 --lr-g 4e-4 --lr-d 4e-4 --steps 2263   # another learning rate
    python benchmarks/quality_curve.py --minutes 0.2 0.4 --n 64 --reference-limit 256 --pixels   # a quick check

The reference features of the 10,000 shared faces take about 26 min on an idle 2-core CPU the first time
(6.3 images/s, README "How the kit measures") and are cached in ``~/.cache/gan_lib/reference`` after that.
Run it on an idle machine: training time is what the marks count, and other jobs slow it (``--steps`` marks do not
depend on the machine's speed: a slow CPU reaches the same steps later). ``--precision bf16`` is
1.56x faster than fp32 on a CPU with native bf16 (AVX512-BF16 or AMX) and 15x slower on one without
(``benchmarks/cpu_step_speed.txt``); the first line prints which this CPU is.
"""
import argparse
import copy
import sys
from pathlib import Path

import torch

from gan_lib.eval.evaluate import evaluate, feature_network, reference
from gan_lib.explore import sample_seeded
from gan_lib.data import ImageBatches, load_faces
from gan_lib.callbacks import Budget
from gan_lib.recipes import build
from gan_lib.runtime import seed_everything
from gan_lib.train import Options, train
from gan_lib.callbacks import Watch

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "data" / "anime-faces-64"
COLUMNS = ("fid", "kid_mean", "precision", "recall", "afd", "diversity")


def run_seed(seed: int, faces, args) -> list[tuple[float, int, float, dict]]:
    """Train one seed up to the last mark; (mark minutes, step, train seconds, averaged G's state) per mark."""
    seed_everything(seed)
    recipe = (build("dcgan", "cpu", width=args.width, batch=args.batch, ema_half_life=args.half_life,
                    augment_p=args.augment_p or 0.0,                # the recipe's default: no augmentation
                    lr_g=args.lr_g, lr_d=args.lr_d)
              if not args.ingredients else                  # a lesson 05 row: lesson 03's DCGAN + ingredients
              build("modern", "cpu", ingredients=tuple(args.ingredients), dcgan_width=args.width, batch=args.batch,
                    ema_half_life=args.half_life, augment_p=0.2 if args.augment_p is None else args.augment_p,
                    latent_dim=100))
    if args.channels_last:                       # in place, so that the Adams and the EMA keep these tensors
        recipe.G.to(memory_format=torch.channels_last), recipe.D.to(memory_format=torch.channels_last)
    batches = ImageBatches(faces.images_uint8, batch_size=args.batch, device="cpu", flip=True, seed=seed,
                           channels_last=args.channels_last)
    run, watch, kept = None, Watch(), []         # one Watch for the whole run: each warning is said once
    for mark in sorted(args.steps or args.minutes):
        stop = [] if args.steps else [Budget(60 * mark)]          # a step mark: train(until=) stops there
        run = train(recipe.G, recipe.D, recipe.opt_g, recipe.opt_d, batches, recipe.loss, recipe.noise,
                    mark if args.steps else None, options=Options(progress=False, precision=args.precision),
                    callbacks=[*recipe.callbacks(), watch, *stop], run=run)
        minutes = run.seconds / 60 if args.steps else mark
        kept.append((minutes, run.step, run.seconds, copy.deepcopy(recipe.ema.module.state_dict())))
        print(f"seed {seed}: {minutes:.3g} min reached at step {run.step} ({run.seconds:.0f} s of "
              f"training, {run.step * args.batch / run.seconds:.0f} images/s)", flush=True)
    return kept


def run_G(args):
    """A generator of the trained architecture, to load each kept state into."""
    if args.ingredients:
        return build("modern", "cpu", ingredients=tuple(args.ingredients), dcgan_width=args.width, latent_dim=100).G
    return build("dcgan", "cpu", width=args.width).G


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[5, 10, 20, 30], help="training minutes to score at")
    parser.add_argument("--steps", type=int, nargs="+", default=None,
                        help="score at these steps instead of minutes: the same marks on a slower or busy machine")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--n", type=int, default=1000, help="generated faces per score (HW6 hands in 1,000)")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--half-life", type=float, default=10_000, help="the EMA's half-life in images")
    parser.add_argument("--ingredients", nargs="+", default=None,
                        help='lesson 05 row instead of lesson 03: e.g. "+ EMA" "+ DiffAugment" (gan_lib.recipes.INGREDIENTS)')
    parser.add_argument("--augment-p", type=float, default=None,
                        help="DiffAugment's probability (lesson 03's default: none; with --ingredients: 0.2)")
    parser.add_argument("--lr-g", type=float, default=2e-4, help="G's Adam learning rate (lesson 03's recipe only)")
    parser.add_argument("--lr-d", type=float, default=2e-4, help="D's Adam learning rate (lesson 03's recipe only)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="train's Options.precision")
    parser.add_argument("--channels-last", action="store_true", help="G, D and the batches in channels_last")
    parser.add_argument("--data", type=Path, default=FACES, help="the faces to train on and score against")
    parser.add_argument("--reference-limit", type=int, default=None, help="score against the first N files only")
    parser.add_argument("--pixels", action="store_true", help="pooled pixels instead of Inception (not FID: fast)")
    args = parser.parse_args()
    if args.ingredients and (args.lr_g, args.lr_d) != (2e-4, 2e-4):
        parser.error("--lr-g and --lr-d set lesson 03's recipe; a lesson 05 row's learning rate is its ingredients'.")
    if not args.data.is_dir():
        print(f"{args.data} is missing: this benchmark needs a folder of real faces (--data).")
        return 2
    faces, source = load_faces(args.data, allow_download=False)
    net, features = feature_network("pixels" if args.pixels else "inception")
    ref = reference(args.data, limit=args.reference_limit, net=net)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()} (native bf16: {torch.cpu._is_avx512_bf16_supported()}); "
          f"trained on {source}; scored with "
          f"{features} features, N = {args.n} generated vs the reference's {ref['n']:,} faces"
          + ("; pixel features, so the fid/kid columns are pixel distances, not FID/KID" if features == "pixels"
             else ""), flush=True)
    rows = []
    for seed in args.seeds:
        G = run_G(args)
        for mark, step, seconds, state in run_seed(seed, faces, args):
            G.load_state_dict(state)
            result = evaluate(sample_seeded(G, args.n, seed=1000 + seed), ref, net=net)
            rows.append((seed, mark, step, seconds, result))
    print(f"\n{'seed':>4s} {'min':>5s} {'step':>6s} {'train s':>7s} " + " ".join(f"{c:>9s} {'(real)':>7s}"
                                                                          for c in COLUMNS))
    for seed, mark, step, seconds, r in rows:
        print(f"{seed:4d} {mark:5.3g} {step:6d} {seconds:7.0f} " + " ".join(
            f"{r.get(c, float('nan')):9.3f} {r.get(c + '_real', float('nan')):7.3f}" for c in COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
