"""The instructor's path: Run all of lessons 03, 04 and 05 in full mode when their runs are already trained.

Each lesson runs twice in full mode (real faces, the lesson's own N for every score, Inception features), with
only the training shortened (the parameters below) so that the first session is affordable on a CPU; both
sessions share one CHECKPOINT_DIR per lesson. The first session trains and scores; the second finds every run
finished, loads it and reads the scores saved with it. The second session's wall-clock time is the instructor's
(issue 20's target: at most 2 minutes per lesson on 2 idle cores); it does not depend on how long the runs were
trained, only on loading them, drawing the figures and writing the submission.

    python benchmarks/instructor_path.py --folder /tmp/instructor            # both sessions of 03, 04, 05
    python benchmarks/instructor_path.py --folder /tmp/instructor --only 04 --second-only

Measured (torch 2.14.1, 2 cores; first sessions on a busy machine, then `--second-only` on the idle one):
    lesson 03: first session (trains, scores)   1388 s
    lesson 04: first session (trains, scores)   1061 s
    lesson 05: first session (trains, scores)    951 s
    lesson 03: second session (runs finished)     17 s   {'trained': 0, 'computed': []}
    lesson 04: second session (runs finished)     12 s   {'scored': []}
    lesson 05: second session (runs finished)     20 s   {'this_session': {'trained': {... every row: 0}, 'scored': []}}

Over runs trained on the real CPU budget instead (lesson 03's 6,000 steps, lesson 05's five 300-s rows), a plain
``GAN_LIB_SMOKE=0 jupyter nbconvert --to notebook --execute`` of each took 41 s (lesson 03) and 30 s (lesson 05)
on a slower machine (fp32 matmul 73-116 GFLOP/s), training 0 steps and computing no score.
"""
import argparse
import sys
import time
from pathlib import Path

import torch

from gan_lib.teach.lessons import run_notebook

ROOT = Path(__file__).resolve().parents[1]
SHORT = {   # training length only: every other parameter keeps its full-mode value
    "03": ("03_anime_dcgan.ipynb", {"STEPS": 10, "FAIL_STEPS": 5, "SAMPLE_EVERY": 5}),
    "04": ("04_wgan_gp.ipynb", {"STEPS": 5, "STUDY_STEPS": 3}),
    "05": ("05_modern_gan.ipynb", {"BUDGET_S": 5}),
}


def session(lesson: str, folder: Path) -> tuple[float, dict]:
    name, params = SHORT[lesson]
    started = time.perf_counter()
    result = run_notebook(ROOT / "notebooks" / name, smoke=False, timeout=7200,
                          parameters={**params, "CHECKPOINT_DIR": str(folder / lesson)})
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, required=True, help="where the lessons' checkpoint folders go")
    parser.add_argument("--only", nargs="+", default=list(SHORT), choices=list(SHORT))
    parser.add_argument("--second-only", action="store_true", help="the runs are there: time the second session")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for lesson in args.only:
        if not args.second_only:
            seconds, _ = session(lesson, args.folder)
            print(f"lesson {lesson}: first session (trains, scores) {seconds:6.0f} s", flush=True)
        seconds, result = session(lesson, args.folder)
        said = {key: result[key] for key in ("trained", "computed", "scored", "this_session") if key in result}
        print(f"lesson {lesson}: second session (runs finished) {seconds:6.0f} s   {said}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
