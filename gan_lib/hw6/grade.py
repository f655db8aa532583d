"""Grade a folder of HW6 submissions (one ``<student>.tgz`` each) against the real faces:

    python -m gan_lib.hw6.grade SUBMISSIONS_DIR --reference REAL_DIR --out OUT_DIR [--n 1000] [--features pixels]

The folders, the student names and OUT_DIR are checked first (bad input: ``error: <sentence>``, exit 2).
Each archive is read within ``gan_lib.hw6.submission.read_submission``'s limits and validated; a broken one gets a
row with the reason and the batch goes on. Valid ones get the evaluator's numbers (``gan_lib.eval.evaluate``: FID,
KID ± std, precision/recall, AFD, diversity, memorisation), ranked by FID, the flagged ones after the unflagged,
beside a "real vs real" row at the same N. Two flags: **copied** (more than ``FLAG_SHARE`` of a student's images
are nearer a reference image than half the distance of the closest real-vs-real neighbours: the evaluator's
memorisation threshold, searched among the reference images used) and **shares images with X** (the same test
between two students). Writes ``grades.csv`` and ``leaderboard.html`` (self-contained: the thumbnails are inline
base64 PNGs; the page says which features, N and reference were used) into OUT_DIR. With pooled-pixel features
FID and KID are named pixel-FD and pixel-KD.
"""
from __future__ import annotations

import argparse
import base64
import csv
import html
import io
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid
from tqdm.auto import tqdm

from gan_lib.data import to_unit_range
from gan_lib.eval.evaluate import PixelFeatures, _cascade, _listing, describe, evaluate, feature_network, nearest, reference
from gan_lib.eval.image_metrics import InceptionFeatures, inception, to_uint8_hwc
from gan_lib.hw6.submission import HW6_COUNT, read_submission

FLAG_SHARE = 0.10            # flag when more than this share of a student's images are copies
METRICS = ["fid", "kid_mean", "kid_std", "precision", "recall", "afd", "diversity", "memorised"]
COLUMNS = ["rank", "student", "status"] + METRICS + ["flags", "reason"]
THUMBNAILS = 8
OUTPUTS = ("grades.csv", "leaderboard.html")


def _images(files: dict[str, bytes], n: int) -> torch.Tensor:
    """Images ``1.jpg … n.jpg`` of a valid submission's files -> (n, 3, H, W) in [-1, 1]."""
    pixels = [np.asarray(Image.open(io.BytesIO(files[f"{i}.jpg"])).convert("RGB")) for i in range(1, n + 1)]
    return to_unit_range(torch.from_numpy(np.stack(pixels))).permute(0, 3, 1, 2)   # (n, 3, H, W)


def read_archive(path: str | Path, n: int = HW6_COUNT) -> torch.Tensor:
    """Images ``1.jpg … n.jpg`` of a valid submission archive -> (n, 3, H, W) in [-1, 1], read within
    ``read_submission``'s limits; a ``ValueError`` names the first problem of an invalid one."""
    files, problems = read_submission(path, n)
    if problems:
        raise ValueError(f"{path} is not a valid HW6 submission: {problems[0]}")
    return _images(files, n)


def _strip(images: torch.Tensor) -> str:
    """A row of thumbnails as an inline PNG (data URI)."""
    grid = make_grid(images[:THUMBNAILS], nrow=THUMBNAILS, padding=2, value_range=(-1, 1), normalize=True)
    buffer = io.BytesIO()
    Image.fromarray(to_uint8_hwc(grid[None] * 2 - 1)[0]).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _student(path: Path) -> str:
    return path.name.removesuffix(".tgz").removesuffix(".tar.gz")


def _grade_one(path: Path, n: int, ref: dict, net, cascade, kid_subsets: int) -> tuple[dict, dict | None]:
    """One student's row (and what the cross-student check needs); never raises."""
    row = {"student": _student(path), "flags": "", "reason": ""}
    try:
        with warnings.catch_warnings(record=True) as caught:                  # e.g. "archive above 8 MB"
            warnings.simplefilter("always")
            files, problems = read_submission(path, n=n)
        if problems:
            return {**row, "status": "invalid", "reason": " ".join(problems).replace("\n", " ")}, None
        images = _images(files, n)                                              # (n, 3, 64, 64)
        seen = describe(images, net, cascade)
        result = evaluate(seen, ref, kid_subsets=kid_subsets)
        notes = "; ".join(str(w.message) for w in caught)
        return {**row, "status": "ok", "reason": notes, **result}, {"features": seen["features"],
                                                                    "strip": _strip(images)}
    except Exception as err:  # noqa: BLE001 -- one bad archive must not stop the batch
        return {**row, "status": "error", "reason": f"{type(err).__name__}: {err}"}, None


def _flag(rows: list[dict], kept: dict[str, dict]) -> None:
    """Add the copied / shared-images flags to valid rows."""
    for row in rows:
        if row["status"] != "ok":
            continue
        flags = [f"copied: {row['memorised']:.0%} of images nearer a reference image than real-vs-real"
                 ] if row["memorised"] > FLAG_SHARE else []
        for other in kept:
            if other != row["student"]:
                dist = nearest(kept[row["student"]]["features"], kept[other]["features"])[0]
                share = float((dist < row["copy_threshold"]).float().mean())
                if share > FLAG_SHARE:
                    flags.append(f"shares {share:.0%} of images with {other}")
        row["flags"] = "; ".join(flags)


def _folder(path: Path, what: str) -> Path:
    """``path`` if it is an existing folder, else one sentence on what to pass instead."""
    if not path.exists():
        raise FileNotFoundError(f"the {what} {path} does not exist: check the path (it is relative to {Path.cwd()}).")
    if not path.is_dir():
        raise NotADirectoryError(f"the {what} {path} is a file, not a folder: pass the folder that holds them.")
    return path


def _archives(submissions: Path) -> list[Path]:
    """The ``*.tgz`` / ``*.tar.gz`` of ``submissions``, refused when two name the same student."""
    paths = sorted(p for p in _folder(submissions, "submissions folder").iterdir()
                   if p.name.endswith((".tgz", ".tar.gz")))
    if not paths:
        raise FileNotFoundError(f"no .tgz archive in {submissions}: pass the folder that holds the students' "
                                f"submissions (one <student>.tgz each).")
    by_student: dict[str, list[str]] = {}
    for p in paths:
        by_student.setdefault(_student(p), []).append(p.name)
    twice = [" and ".join(names) for names in by_student.values() if len(names) > 1]
    if twice:
        raise ValueError(f"{'; '.join(twice[:3])}{f' and {len(twice) - 3} more' if len(twice) > 3 else ''} name "
                         f"the same student{'s' if len(twice) > 1 else ''}: keep one archive per student in "
                         f"{submissions}.")
    return paths


def _check_out(out: Path, overwrite: bool) -> None:
    """Make ``out`` (before any image is graded) and refuse outputs in the way: a file named ``out``, a folder
    named like an output, or earlier grades unless ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file: pass a folder for {' and '.join(OUTPUTS)} (it is created "
                                 f"if missing).")
    held = [name for name in OUTPUTS if (out / name).exists()]
    if any((out / name).is_dir() for name in held):
        raise IsADirectoryError(f"{out} holds a folder named {' or '.join(held)}: move it, or choose another --out.")
    if held and not overwrite:
        raise FileExistsError(f"{out} already holds {' and '.join(held)}: choose another --out, or pass "
                              f"--overwrite (overwrite=True) to replace them.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"--out {out} cannot be created ({err.strerror}): choose a folder you can write to.") from None


def _features(net) -> tuple[str, str]:
    """What the page calls the features of ``net`` and the Fréchet distance on them."""
    if isinstance(net, PixelFeatures):
        return "pooled pixels (gan_lib.eval.evaluate.PixelFeatures, 4x4 averages), not Inception", "pixel-FD"
    if isinstance(net, InceptionFeatures):
        return "the TF FID Inception (2048-d pool features)", "FID"
    return f"{type(net).__name__} features, not the FID Inception", "FD"


def grade(submissions: str | Path, reference_dir: str | Path, out: str | Path, n: int = HW6_COUNT,
          reference_limit: int | None = None, net=None, cascade="auto", kid_subsets: int = 50,
          cache_dir: str | Path | None = None, progress: bool = True, overwrite: bool = False) -> list[dict]:
    """Grade every ``*.tgz`` in ``submissions``; write ``grades.csv`` and ``leaderboard.html`` into ``out``
    and return the rows: ranked valid rows first (the unflagged by FID, then the flagged by FID), then the
    real-vs-real row, then broken ones. The folders, the student names (``alice.tgz`` and ``alice.tar.gz``
    would clash) and ``out`` (earlier grades are kept unless ``overwrite``) are checked before any grading.
    ``net``: the feature network, or ``"inception"`` / ``"pixels"`` (``evaluate.feature_network``); default the
    FID Inception. Each row's ``measure`` names what its ``fid`` is ("FID", or "pixel-FD" for pooled pixels)."""
    submissions, out = Path(submissions), Path(out)
    if n < 1:
        raise ValueError(f"n={n}: pass the number of images in each archive (HW6: {HW6_COUNT}).")
    paths = _archives(submissions)
    total = len(_listing(_folder(Path(reference_dir), "reference folder"), None))
    if not total:
        raise FileNotFoundError(f"the reference folder {reference_dir} holds no files: pass a folder of real face "
                                f"images (the training set).")
    _check_out(out, overwrite)
    net = feature_network(net)[0] if isinstance(net, str) else net or inception()
    cascade = _cascade() if cascade == "auto" else cascade
    ref = reference(reference_dir, limit=reference_limit, net=net, cascade=cascade, progress=progress,
                    **({} if cache_dir is None else {"cache_dir": cache_dir}))
    rows, kept = [], {}
    for path in tqdm(paths, desc="students", unit="student", disable=not progress):
        row, seen = _grade_one(path, n, ref, net, cascade, kid_subsets)
        rows.append(row)
        if seen is not None:
            kept[row["student"]] = seen
    _flag(rows, kept)
    ok = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: (bool(r["flags"]), r["fid"]))
    for rank, row in enumerate(ok, 1):
        row["rank"], row["strip"] = rank, kept[row["student"]]["strip"]
    floor = [{"rank": "", "student": "real vs real (held-out)", "status": "floor", "flags": "", "reason": "",
              **{m: ok[0][f"{m}_real"] for m in METRICS if f"{m}_real" in ok[0]}}] if ok else []
    rows = ok + floor + [r for r in rows if r["status"] != "ok"]
    features, fd = _features(net)
    for row in rows:
        row["measure"] = fd                                                     # what "fid" holds: FID, pixel-FD
    searched = (f"copies were searched for among those {ref['n']:,} only: grade without --reference-limit to "
                f"search all {total:,}" if reference_limit is not None and reference_limit < total
                else f"copies were searched for among all {ref['n']:,} readable images")
    about = (f"Ranked by {fd} (lower is better), students flagged for review after the unflagged ones. Features: "
             f"{features}; N = {n:,} images per student; reference: {ref['n']:,} of the {total:,} files in "
             f"{reference_dir} ({ok[0]['n_real']:.0f} held out for the real-vs-real row, a pool of "
             f"{ok[0]['n_pool']:.0f}), and {searched}." if ok else
             f"No valid submission; features: {features}; reference: {ref['n']:,} of {total:,} files.")
    _write(rows, out, fd, about)
    return rows


def _cell(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value if value is not None else "")


def _write(rows: list[dict], out: Path, fd: str, about: str) -> None:
    """``grades.csv`` and ``leaderboard.html``, FID and KID named ``fd`` (e.g. "pixel-FD") and its K twin."""
    kd = fd.replace("FD", "KD").replace("FID", "KID")
    names = {"fid": fd, "kid_mean": f"{kd} mean", "kid_std": f"{kd} std"}
    header = [names.get(c, c).lower().replace("-", "_").replace(" ", "_") for c in COLUMNS]
    with open(out / "grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([_cell(r.get(c, "")) for c in COLUMNS] for r in rows)
    head = "".join(f"<th>{html.escape(names.get(c, c))}</th>" for c in COLUMNS + ["samples"])
    first_flagged = next((r["student"] for r in rows if r["status"] == "ok" and r["flags"]), None)
    body = "".join(
        (f'<tr><th colspan="{len(COLUMNS) + 1}">flagged: review before grading (ranked after the unflagged)</th>'
         "</tr>\n" if r["student"] == first_flagged else "")
        + "<tr{}>".format(' class="bad"' if r["status"] in ("invalid", "error") else ' class="flag"' if r["flags"]
                          else "")
        + "".join(f"<td>{html.escape(_cell(r.get(c, '')))}</td>" for c in COLUMNS)
        + (f'<td><img src="{r["strip"]}" alt="samples of {html.escape(r["student"])}"></td>' if r.get("strip")
           else "<td></td>") + "</tr>\n" for r in rows)
    (out / "leaderboard.html").write_text(
        "<!doctype html><meta charset='utf-8'><title>HW6 leaderboard</title><style>body{font-family:sans-serif}"
        "td,th{padding:2px 6px;border-bottom:1px solid #ddd;font-size:13px}.bad{background:#fdd}"
        f".flag{{background:#ffd}}</style><h1>HW6 leaderboard</h1><p>{html.escape(about)} The protocol is in "
        f"gan_lib/eval/evaluate.py.</p><table><tr>{head}</tr>\n{body}</table>\n")


def main(argv: list[str] | None = None) -> int:
    """Grade from the shell; bad input gets ``error: <one sentence>`` on stderr and exit status 2."""
    parser = argparse.ArgumentParser(prog="python -m gan_lib.hw6.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", help="folder of <student>.tgz archives")
    parser.add_argument("--reference", required=True, help="folder of real face images (the training set)")
    parser.add_argument("--out", required=True, help="folder for grades.csv and leaderboard.html")
    parser.add_argument("--n", type=int, default=HW6_COUNT, help="images per archive (HW6: 1000)")
    parser.add_argument("--reference-limit", type=int, default=None, help="use the first N reference files")
    parser.add_argument("--features", default="inception", choices=["inception", "pixels"],
                        help="Inception (FID) or pooled pixels (a quick stand-in, not FID)")
    parser.add_argument("--kid-subsets", type=int, default=50, help="random subsets KID is averaged over")
    parser.add_argument("--overwrite", action="store_true", help="replace grades already in --out")
    parser.add_argument("--traceback", action="store_true", help="on an error, show the full traceback")
    args = parser.parse_args(argv)
    try:
        rows = grade(args.submissions, args.reference, args.out, n=args.n, reference_limit=args.reference_limit,
                     net=args.features, kid_subsets=args.kid_subsets, overwrite=args.overwrite)
    except (OSError, ValueError, RuntimeError) as err:
        if args.traceback:
            raise
        print(f"error: {str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}",
              file=sys.stderr)
        return 2
    for r in rows:
        print(f"{_cell(r.get('rank', '')):>4} {r['student']:<24} {r['status']:<8} "
              f"{r['measure']} {_cell(r.get('fid', '-')):>9}  {r['flags'] or r['reason']}"[:160])
    print(f"wrote {Path(args.out) / 'grades.csv'} and {Path(args.out) / 'leaderboard.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
