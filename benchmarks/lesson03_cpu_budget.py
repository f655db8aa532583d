"""Lesson 03 on its CPU budget: train the 64 px DCGAN on the shared real faces and print its evaluation.

It runs the lesson notebook itself in full mode without a GPU, so with no options the settings are the lesson's own
CPU budget (its ``cpu=`` values) and the numbers are what a student's "Run all" prints; each option replaces one
setting (``--seed 1``: another seed of the same budget). It prints the whole notebook's time, the failure demos'
table, the keep-best score every EVAL_EVERY steps, which G was kept and submitted, and gan_lib.eval.evaluate's
numbers for it (FID/KID on the offline TF FID Inception, against real-vs-real at the same N).
With --checkpoints DIR it checkpoints there; run it twice to time the instructor's "finished run present" path
(every run loaded and every score read back from its checkpoint: the second session prints "trained 0 steps" and
"scores computed: none"). Full-mode numbers need a GPU (the notebook's defaults).

    python benchmarks/lesson03_cpu_budget.py [--seed 0] [--steps N] [--width W] [--checkpoints DIR]
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
    for flag, name, kind in [("--seed", "SEED", int), ("--steps", "STEPS", int), ("--width", "WIDTH", int),
                             ("--batch", "BATCH", int), ("--fail-steps", "FAIL_STEPS", int),
                             ("--eval-every", "EVAL_EVERY", int), ("--n-eval", "N_EVAL", int),
                             ("--n-ref", "N_REF", int), ("--features", "FEATURES", str)]:
        parser.add_argument(flag, dest=name, type=kind, default=None, help=f"the lesson's {name} (default: its CPU budget's)")
    parser.add_argument("--checkpoints", default=None, help="checkpoint folder (default: a fresh temporary one)")
    args = parser.parse_args()
    if not FACES.is_dir():
        print(f"{FACES} is missing: this benchmark needs the shared real faces.")
        return 2
    folder = args.checkpoints or tempfile.mkdtemp(prefix="lesson03_cpu_")
    t0 = time.perf_counter()
    chosen = {name: value for name, value in vars(args).items() if name.isupper() and value is not None}
    r = run_notebook(ROOT / "notebooks" / "03_anime_dcgan.ipynb", smoke=False, timeout=3600, parameters={
        "DATA_DIR": str(FACES), **chosen, "CHECKPOINT_DIR": folder, "SUBMISSION_DIR": "runs/benchmark_submission"})
    print(f"device cpu, the lesson's CPU budget with {chosen or 'nothing changed'}, checkpoints in {folder}: "
          f"{r['steps']} steps; this session trained {r['train_seconds']:.0f} s (run's total training "
          f"{r['trained_seconds']:.0f} s), whole notebook {time.perf_counter() - t0:.0f} s; resumed from step "
          f"{r['resumed_from']}, trained {r['trained']} steps; scores computed: "
          f"{', '.join(r['computed']) or 'none (read back with the runs)'}")
    print("failure demos:")
    print(f"  {'run':32s} {'mean pixel':>10s} {'< 0 %':>6s} {'black %':>7s} {'D(x)':>6s} {'D(G(z))':>8s} "
          f"{'diversity':>9s}")
    for name, f in r["failures"].items():
        print(f"  {name:32s} {f['mean_pixel']:10.2f} {100 * f['below0']:6.1f} {100 * f['black']:7.1f} {f['D(x)']:6.2f} "
              f"{f['D(G(z))']:8.2f} "
              f"{f['diversity']:9.3f}" + (f"  (loaded at step {f['loaded_at']})" if f["loaded_at"] else ""))
    print("keep-best scores of the averaged G (N_SCORE images; the lowest KID is kept):")
    for e in r["evals"]:
        afd = e.get("afd", float("nan"))                 # none without a face detector
        print(f"  step {e['step']:5d}  KID {e['kid_mean']:.4f}  FID {e['fid']:.1f}  AFD {afd:.3f}  "
              f"diversity {e['diversity']:.3f}")
    print(f"kept: the averaged G of step {r['best_step']}; submitted: {r['kept']}")
    print(f"the kept G, scored by gan_lib.eval.evaluate (features: {r['features']}):")
    print(report(r))
    print(f"submission valid: {r['submission_valid']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
