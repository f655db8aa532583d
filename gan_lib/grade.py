"""Grade a folder of HW6 submissions (one ``<student>.tgz`` each) against the real faces:

    python -m gan_lib.grade SUBMISSIONS_DIR --reference REAL_DIR --out OUT_DIR [--n 1000]

Each archive is validated (``gan_lib.submission.validate_submission``); a broken one gets a row with the
reason and the batch goes on. Valid ones get the evaluator's numbers (``gan_lib.evaluate``: FID, KID ± std,
precision/recall, AFD, diversity, memorisation), ranked by FID, beside a "real vs real" row at the same N.
Two flags: **copied** (more than ``FLAG_SHARE`` of a student's images are nearer a reference image than
half the distance of the closest real-vs-real neighbours: the evaluator's memorisation threshold) and **shares images with X**
(the same test between two students). Writes ``grades.csv`` and ``leaderboard.html`` (self-contained: the
thumbnails are inline base64 PNGs) into OUT_DIR.
"""
from __future__ import annotations

import argparse
import base64
import csv
import html
import io
import tarfile
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid
from tqdm.auto import tqdm

from gan_lib.data import to_unit_range
from gan_lib.evaluate import _cascade, describe, evaluate, nearest, reference
from gan_lib.image_metrics import inception, to_uint8_hwc
from gan_lib.submission import HW6_COUNT, validate_submission

FLAG_SHARE = 0.10            # flag when more than this share of a student's images are copies
METRICS = ["fid", "kid_mean", "kid_std", "precision", "recall", "afd", "diversity", "memorised"]
COLUMNS = ["rank", "student", "status"] + METRICS + ["flags", "reason"]
THUMBNAILS = 8


def read_archive(path: str | Path, n: int = HW6_COUNT) -> torch.Tensor:
    """Images ``1.jpg … n.jpg`` of a valid submission archive -> (n, 3, H, W) in [-1, 1]."""
    with tarfile.open(path, "r:*") as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
        pixels = [np.asarray(Image.open(io.BytesIO(tar.extractfile(members[f"{i}.jpg"]).read())).convert("RGB"))
                  for i in range(1, n + 1)]
    return to_unit_range(torch.from_numpy(np.stack(pixels))).permute(0, 3, 1, 2)   # (n, 3, H, W)


def _strip(images: torch.Tensor) -> str:
    """A row of thumbnails as an inline PNG (data URI)."""
    grid = make_grid(images[:THUMBNAILS], nrow=THUMBNAILS, padding=2, value_range=(-1, 1), normalize=True)
    buffer = io.BytesIO()
    Image.fromarray(to_uint8_hwc(grid[None] * 2 - 1)[0]).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _grade_one(path: Path, n: int, ref: dict, net, cascade, kid_subsets: int) -> tuple[dict, dict | None]:
    """One student's row (and what the cross-student check needs); never raises."""
    row = {"student": path.name.removesuffix(".tgz").removesuffix(".tar.gz"), "flags": "", "reason": ""}
    try:
        with warnings.catch_warnings(record=True) as caught:                  # e.g. "archive above 2 MB"
            warnings.simplefilter("always")
            problems = validate_submission(path, n=n, raise_on_error=False)
        if problems:
            return {**row, "status": "invalid", "reason": " ".join(problems).replace("\n", " ")}, None
        images = read_archive(path, n)                                          # (n, 3, 64, 64)
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


def grade(submissions: str | Path, reference_dir: str | Path, out: str | Path, n: int = HW6_COUNT,
          reference_limit: int | None = None, net=None, cascade="auto", kid_subsets: int = 50,
          cache_dir: str | Path | None = None, progress: bool = True) -> list[dict]:
    """Grade every ``*.tgz`` in ``submissions``; write ``grades.csv`` and ``leaderboard.html`` into ``out``
    and return the rows (ranked valid rows first, then the real-vs-real row, then broken ones)."""
    submissions, out = Path(submissions), Path(out)
    paths = sorted(p for p in submissions.iterdir() if p.name.endswith((".tgz", ".tar.gz")))
    if not paths:
        raise FileNotFoundError(f"no .tgz archive in {submissions}: pass the folder that holds the students' "
                                f"submissions (one <student>.tgz each).")
    net = net or inception()
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
    ok = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: r["fid"])
    for rank, row in enumerate(ok, 1):
        row["rank"], row["strip"] = rank, kept[row["student"]]["strip"]
    floor = [{"rank": "", "student": "real vs real (held-out)", "status": "floor", "flags": "", "reason": "",
              **{m: ok[0][f"{m}_real"] for m in METRICS if f"{m}_real" in ok[0]}}] if ok else []
    rows = ok + floor + [r for r in rows if r["status"] != "ok"]
    _write(rows, out)
    return rows


def _cell(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value if value is not None else "")


def _write(rows: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "grades.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({c: _cell(r.get(c, "")) for c in COLUMNS} for r in rows)
    head = "".join(f"<th>{c}</th>" for c in COLUMNS + ["samples"])
    body = "".join(
        "<tr{}>".format(' class="bad"' if r["status"] in ("invalid", "error") else ' class="flag"' if r["flags"]
                        else "")
        + "".join(f"<td>{html.escape(_cell(r.get(c, '')))}</td>" for c in COLUMNS)
        + (f'<td><img src="{r["strip"]}" alt="samples of {html.escape(r["student"])}"></td>' if r.get("strip")
           else "<td></td>") + "</tr>\n" for r in rows)
    (out / "leaderboard.html").write_text(
        "<!doctype html><meta charset='utf-8'><title>HW6 leaderboard</title><style>body{font-family:sans-serif}"
        "td,th{padding:2px 6px;border-bottom:1px solid #ddd;font-size:13px}.bad{background:#fdd}"
        ".flag{background:#ffd}</style><h1>HW6 leaderboard</h1><p>Ranked by FID (lower is better); the "
        "protocol is in gan_lib/evaluate.py.</p>"
        f"<table><tr>{head}</tr>\n{body}</table>\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gan_lib.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", help="folder of <student>.tgz archives")
    parser.add_argument("--reference", required=True, help="folder of real face images (the training set)")
    parser.add_argument("--out", required=True, help="folder for grades.csv and leaderboard.html")
    parser.add_argument("--n", type=int, default=HW6_COUNT, help="images per archive (HW6: 1000)")
    parser.add_argument("--reference-limit", type=int, default=None, help="use the first N reference files")
    args = parser.parse_args(argv)
    rows = grade(args.submissions, args.reference, args.out, n=args.n, reference_limit=args.reference_limit)
    for r in rows:
        print(f"{_cell(r.get('rank', '')):>4} {r['student']:<24} {r['status']:<8} "
              f"FID {_cell(r.get('fid', '-')):>9}  {r['flags'] or r['reason']}"[:160])
    print(f"wrote {Path(args.out) / 'grades.csv'} and {Path(args.out) / 'leaderboard.html'}")


if __name__ == "__main__":
    main()
