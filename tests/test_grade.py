"""The grader on a folder of good, broken, duplicated, copied and noise submissions (small n, a cheap feature net)."""
from __future__ import annotations

import csv
import shutil

import pytest
import torch

from gan_lib.grade import grade, main
from gan_lib.submission import write_submission
from gan_lib.evaluate import PixelFeatures
from test_evaluate import FACES, faces, needs_faces, noise

N = 20


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    needs_faces()
    root = tmp_path_factory.mktemp("grading")
    real, subs = root / "real", root / "submissions"
    real.mkdir()
    subs.mkdir()
    for f in sorted(FACES.glob("*.jpg"))[:80]:                     # the "training set"
        shutil.copy(f, real / f.name)
    for student, images in {"alice": faces(300, N), "bob": faces(0, N), "carol": noise(N)}.items():
        write_submission(images, root / student, n=N, archive=subs / f"{student}.tgz")   # bob copies training images
    shutil.copy(subs / "alice.tgz", subs / "dave.tgz")             # dave hands in alice's archive
    (subs / "eve.tgz").write_bytes(b"not a tar archive")
    write_submission(faces(400, N - 1), root / "frank", n=N - 1, archive=subs / "frank.tgz")  # one image short
    rows = grade(subs, real, root / "out", n=N, net=PixelFeatures(), cascade=None, kid_subsets=10, cache_dir=root / "cache",
                 progress=False)
    return {row["student"]: row for row in rows}, rows, root / "out"


def test_broken_archives_get_a_reason_and_the_batch_goes_on(graded):
    by_name, rows, _ = graded
    assert by_name["eve"]["status"] == "invalid" and "not a readable .tgz" in by_name["eve"]["reason"]
    assert by_name["frank"]["status"] == "invalid" and f"expected {N}" in by_name["frank"]["reason"]
    assert [r["status"] for r in rows][-2:] == ["invalid", "invalid"]          # broken ones last, unranked
    assert {r["student"] for r in rows if r["status"] == "ok"} == {"alice", "bob", "carol", "dave"}


def test_ranked_by_fid_with_noise_last(graded):
    by_name, rows, _ = graded
    ok = [r for r in rows if r["status"] == "ok"]
    assert [r["rank"] for r in ok] == [1, 2, 3, 4] and ok[-1]["student"] == "carol"
    assert all(ok[i]["fid"] <= ok[i + 1]["fid"] for i in range(3))
    assert rows[4]["student"].startswith("real vs real") and rows[4]["fid"] == pytest.approx(ok[0]["fid_real"])


def test_copies_and_shared_images_are_flagged(graded):
    by_name, _, _ = graded
    assert "copied" in by_name["bob"]["flags"] and by_name["bob"]["memorised"] > 0.9
    assert "with dave" in by_name["alice"]["flags"] and "with alice" in by_name["dave"]["flags"]
    assert "copied" not in by_name["alice"]["flags"] and by_name["carol"]["flags"] == ""
    assert "alice" not in by_name["bob"]["flags"]


def test_csv_and_self_contained_html(graded):
    by_name, rows, out = graded
    table = list(csv.DictReader(open(out / "grades.csv")))
    assert [r["student"] for r in table] == [r["student"] for r in rows] and "fid" in table[0]
    page = (out / "leaderboard.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and "http" not in page.replace("http-equiv", "")
    assert "not a readable .tgz" in page


def test_command_line_refuses_an_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .tgz archive"):
        main([str(tmp_path), "--reference", str(tmp_path), "--out", str(tmp_path / "out")])
