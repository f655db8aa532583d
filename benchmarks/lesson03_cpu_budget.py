"""Lesson 03 on a CPU budget: train the 64 px DCGAN on the shared real faces and print its evaluation.

The budget (issue 4 leaves it to us): width 32 instead of 64, batch 64, STEPS generator updates (default 400),
on ../shared/data/anime-faces-64 (10,000 real faces). It runs the lesson notebook itself, so the numbers are
what a student would see with these settings: the failure demos' table (--fail-steps each), the keep-best
score every --eval-every steps, the step whose averaged G was kept, and gan_lib.eval.evaluate's numbers for it
(500 generated faces against 1,500 real ones, FID/KID on the offline TF FID Inception).
With --checkpoints DIR it checkpoints there; run it twice to time the instructor's "finished run present" path
(every run loaded and every score read back from its checkpoint: the second session prints "trained 0 steps" and
"scores computed: none"). Full-mode numbers need a GPU (the notebook's defaults).

    python benchmarks/lesson03_cpu_budget.py [--steps 400] [--width 32] [--fail-steps 10] [--checkpoints DIR]
    python benchmarks/lesson03_cpu_budget.py --steps 2 --width 8 --batch 16 --fail-steps 1 --eval-every 1 \
        --n-eval 16 --n-ref 48 --features pixels                         # a quick check that it runs
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

from gan_lib.eval.evaluate import report
from gan_lib.teach.lessons import run_notebook

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "data" / "anime-faces-64"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--fail-steps", type=int, default=10)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--checkpoints", default=None, help="checkpoint folder (default: a fresh temporary one)")
    parser.add_argument("--n-eval", type=int, default=500, help="generated faces for the final evaluation")
    parser.add_argument("--n-ref", type=int, default=1500, help="real faces for it (N_EVAL of them held out)")
    parser.add_argument("--features", default="inception", choices=["inception", "pixels"])
    args = parser.parse_args()
    if not FACES.is_dir():
        print(f"{FACES} is missing: this benchmark needs the shared real faces.")
        return 2
    folder = args.checkpoints or tempfile.mkdtemp(prefix="lesson03_cpu_")
    t0 = time.perf_counter()
    r = run_notebook(ROOT / "notebooks" / "03_anime_dcgan.ipynb", smoke=False, timeout=3600, parameters={
        "DATA_DIR": str(FACES), "STEPS": args.steps, "WIDTH": args.width, "BATCH": args.batch,
        "FAIL_STEPS": args.fail_steps, "SAMPLE_EVERY": min(100, args.steps), "EVAL_EVERY": args.eval_every,
        "N_SCORE": 250, "N_EVAL": args.n_eval, "N_REF": args.n_ref, "FEATURES": args.features, "CHECKPOINT_DIR": folder,
        "SUBMISSION_DIR": "runs/benchmark_submission"})
    print(f"device cpu, {args.steps} steps of batch {args.batch}, width {args.width}, checkpoints in {folder}: "
          f"this session trained {r['train_seconds']:.0f} s (run's total training {r['trained_seconds']:.0f} s), "
          f"whole notebook {time.perf_counter() - t0:.0f} s; resumed from step {r['resumed_from']}, trained "
          f"{r['trained']} steps; scores computed: {', '.join(r['computed']) or 'none (read back with the runs)'}")
    print(f"failure demos, {args.fail_steps} steps each:")
    print(f"  {'run':32s} {'mean pixel':>10s} {'< 0 %':>6s} {'black %':>7s} {'D(x)':>6s} {'D(G(z))':>8s} "
          f"{'diversity':>9s}")
    for name, f in r["failures"].items():
        print(f"  {name:32s} {f['mean_pixel']:10.2f} {100 * f['below0']:6.1f} {100 * f['black']:7.1f} {f['D(x)']:6.2f} "
              f"{f['D(G(z))']:8.2f} "
              f"{f['diversity']:9.3f}" + (f"  (loaded at step {f['loaded_at']})" if f["loaded_at"] else ""))
    print("keep-best scores of the averaged G (250 images; the lowest KID is kept):")
    for e in r["evals"]:
        afd = e.get("afd", float("nan"))                 # none without a face detector
        print(f"  step {e['step']:5d}  KID {e['kid_mean']:.4f}  FID {e['fid']:.1f}  AFD {afd:.3f}  "
              f"diversity {e['diversity']:.3f}")
    print(f"kept: the averaged G of step {r['best_step']}")
    print(f"the kept G, scored by gan_lib.eval.evaluate (features: {r['features']}):")
    print(report(r))
    print(f"submission valid: {r['submission_valid']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
