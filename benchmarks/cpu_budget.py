"""Lessons 03-05 in full mode on a CPU (their CPU budget, the settings marked ``cpu=``): how long each takes, and
what it printed.

    python benchmarks/cpu_budget.py 03 05 04          # each lesson from scratch, one after the other
    python benchmarks/cpu_budget.py 05 --seed 1       # another seed (its own checkpoint folder, runs/05_rows_seed1)
    python benchmarks/cpu_budget.py --summarise runs/03_cpu.ipynb     # the printout of a notebook already executed

Each lesson runs as a student's "Run all" would (``gan_lib.teach.lessons.run_notebook``, a fresh kernel in
notebooks/), in full mode (GAN_LIB_SMOKE=0) on a machine without a CUDA GPU, with its default settings and checkpoint
folder (``--seed`` replaces SEED and adds ``_seed<n>`` to the folder), which must not exist yet (a finished run
there would be loaded, not trained). The executed copy goes to runs/<lesson>_cpu[_seed<n>].ipynb;
the benchmark prints the wall-clock time of the whole notebook (issue 21's limit: 45 minutes each, scoring
included), the load average and the fp32 matmul rate before and after (other work on the machine, or a slower
machine, slows a run: the committed runs measured about 210 GFLOP/s), and every line the lesson's cells printed.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from evaluation_speed import matmul_gflops  # noqa: E402
from gan_lib.teach.lessons import RESULT_MARK, run_notebook  # noqa: E402
LESSONS = {"03": ("03_anime_dcgan", "runs/03_dcgan"), "04": ("04_wgan_gp", "runs/04_wgan"),
           "05": ("05_modern_gan", "runs/05_rows")}
LIMIT_S = 45 * 60


def summarise(executed: Path) -> None:
    """Print what the code cells of an executed notebook printed (stdout), cell by cell, and count its warnings."""
    cells = json.loads(executed.read_text())["cells"]
    warnings = 0
    for number, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", ""))
            if output.get("name") == "stderr":
                warnings += text.count("Warning:")
            elif output.get("name") == "stdout" and text.strip() and not text.startswith(RESULT_MARK):
                print(f"[cell {number}]\n{text.rstrip()}")
    print(f"warnings printed: {warnings}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lessons", nargs="*", help="lessons to run: 03, 04 and/or 05")
    parser.add_argument("--seed", type=int, default=None, help="the lessons' SEED (default: each lesson's own)")
    parser.add_argument("--summarise", type=Path, help="only print the output of this executed notebook")
    args = parser.parse_args()
    if args.summarise:
        summarise(args.summarise)
        return 0
    if not args.lessons or set(args.lessons) - set(LESSONS):
        parser.error(f"name the lessons to run, of {', '.join(LESSONS)} (got {args.lessons or 'none'}).")
    import torch
    if torch.cuda.is_available():
        print("a CUDA GPU is here, so the lessons would use their GPU settings: run this on a machine without one.")
        return 2
    failed = 0
    for lesson in args.lessons:
        name, folder = LESSONS[lesson]
        tail = "" if args.seed is None else f"_seed{args.seed}"
        folder += tail
        if (ROOT / "notebooks" / folder).exists():
            print(f"notebooks/{folder} exists, so lesson {lesson} would load it instead of training: move it away.")
            return 2
        out = ROOT / "runs" / f"{lesson}_cpu{tail}.ipynb"
        out.parent.mkdir(exist_ok=True)
        load, rate = os.getloadavg(), matmul_gflops()
        started = time.perf_counter()
        parameters = None if args.seed is None else {"SEED": args.seed, "CHECKPOINT_DIR": folder}
        try:
            run_notebook(ROOT / "notebooks" / f"{name}.ipynb", parameters, smoke=False, timeout=None, executed=out)
            error = None
        except Exception as e:                       # a failed cell: its output is in the executed copy
            error = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
        seconds = time.perf_counter() - started
        print(f"\n=== lesson {lesson}{' seed ' + str(args.seed) if tail else ''}: {seconds / 60:.1f} min for the whole "
              f"notebook (limit {LIMIT_S / 60:.0f}: {'within' if seconds <= LIMIT_S else 'OVER'}), "
              f"{'failed, ' + error if error else 'every cell ran'}, torch "
              f"{torch.__version__}, {torch.get_num_threads()} threads, load average {load[0]:.2f} before, "
              f"{os.getloadavg()[0]:.2f} after; fp32 matmul {rate:.0f} GFLOP/s before, {matmul_gflops():.0f} after")
        failed += error is not None or seconds > LIMIT_S
        if out.exists():
            summarise(out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
