"""The grader on a folder of good, broken, duplicated, copied and noise submissions (small n, a cheap feature net)."""
from __future__ import annotations

import csv
import re
import shutil
from functools import partial

import pytest
import torch

from gan_lib.hw6.grade import grade, main
from gan_lib.hw6.submission import write_submission
from gan_lib.eval.evaluate import PixelFeatures, reference
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


def test_ranked_by_fid_unflagged_first(graded):
    by_name, rows, _ = graded
    ok = [r for r in rows if r["status"] == "ok"]
    assert [r["rank"] for r in ok] == [1, 2, 3, 4]
    assert [r["student"] for r in ok if not r["flags"]] == ["carol"]          # alice, bob, dave: flagged
    assert [bool(r["flags"]) for r in ok] == [False, True, True, True]
    flagged = [r["fid"] for r in ok if r["flags"]]
    assert flagged == sorted(flagged)
    assert rows[4]["student"].startswith("real vs real") and rows[4]["fid"] == pytest.approx(ok[0]["fid_real"])


def test_a_copier_with_the_best_fid_is_ranked_after_the_unflagged(graded):
    by_name, rows, _ = graded
    ok = [r for r in rows if r["status"] == "ok"]
    assert min(ok, key=lambda r: r["fid"])["student"] == "bob"                  # copies score best by FID ...
    assert by_name["bob"]["rank"] > by_name["carol"]["rank"]                    # ... but rank after the unflagged


def test_copies_and_shared_images_are_flagged(graded):
    by_name, _, _ = graded
    assert "copied" in by_name["bob"]["flags"] and by_name["bob"]["memorised"] > 0.9
    assert "with dave" in by_name["alice"]["flags"] and "with alice" in by_name["dave"]["flags"]
    assert "copied" not in by_name["alice"]["flags"] and by_name["carol"]["flags"] == ""
    assert "alice" not in by_name["bob"]["flags"]


def test_csv_and_self_contained_html(graded):
    by_name, rows, out = graded
    table = list(csv.DictReader(open(out / "grades.csv")))
    assert [r["student"] for r in table] == [r["student"] for r in rows]
    page = (out / "leaderboard.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and "http" not in page.replace("http-equiv", "")
    assert "not a readable .tgz" in page


def test_pixel_features_are_not_called_fid_and_the_page_says_what_was_used(graded):
    _, rows, out = graded
    header = next(csv.reader(open(out / "grades.csv")))
    assert header[3:6] == ["pixel_fd", "pixel_kd_mean", "pixel_kd_std"] and "fid" not in header
    page = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", (out / "leaderboard.html").read_text())
    assert "<th>pixel-FD</th>" in page and "FID" not in page
    assert "Features: pooled pixels" in page and f"N = {N} images per student" in page
    assert "reference: 80 of the 80 files" in page and "copies were searched for among all 80 readable images" in page
    assert "flagged: review before grading" in page


def test_a_reference_limit_is_said_on_the_page(graded, tmp_path):
    _, _, out = graded
    real, subs = out.parent / "real", out.parent / "submissions"
    grade(subs, real, tmp_path / "out", n=N, reference_limit=40, net=PixelFeatures(), cascade=None, kid_subsets=10,
          cache_dir=out.parent / "cache", progress=False)
    page = (tmp_path / "out" / "leaderboard.html").read_text()
    assert "reference: 40 of the 80 files" in page
    assert "copies were searched for among those 40 only: grade without --reference-limit to search all 80" in page


class Unused(PixelFeatures):
    """A feature net that fails the test if the grader extracts anything before its checks."""

    def forward(self, x):
        raise AssertionError("features were extracted before the inputs were checked")


def setup_folders(tmp_path, archives=("alice.tgz",)):
    subs, real = tmp_path / "subs", tmp_path / "real"
    subs.mkdir()
    real.mkdir()
    (real / "face.jpg").write_bytes(b"x")
    for name in archives:
        (subs / name).write_bytes(b"x")
    return subs, real


def test_outputs_are_checked_before_any_grading(tmp_path):
    subs, real = setup_folders(tmp_path)
    (tmp_path / "file").write_text("mine")
    with pytest.raises(NotADirectoryError, match=r"--out .*file is a file: pass a folder for grades.csv and "
                                                 r"leaderboard.html \(it is created if missing\)\."):
        grade(subs, real, tmp_path / "file", n=N, net=Unused(), cascade=None, progress=False)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "grades.csv").write_text("last week's grades")
    with pytest.raises(FileExistsError, match=r"already holds grades.csv: choose another --out, or pass --overwrite"):
        grade(subs, real, tmp_path / "out", n=N, net=Unused(), cascade=None, progress=False)
    assert (tmp_path / "out" / "grades.csv").read_text() == "last week's grades"
    (tmp_path / "out2" / "leaderboard.html").mkdir(parents=True)
    with pytest.raises(IsADirectoryError, match="holds a folder named leaderboard.html"):
        grade(subs, real, tmp_path / "out2", n=N, net=Unused(), cascade=None, progress=False)


def test_two_archives_of_one_student_are_refused(tmp_path):
    subs, real = setup_folders(tmp_path, ("alice.tgz", "alice.tar.gz", "bob.tgz"))
    with pytest.raises(ValueError, match=r"^alice.tar.gz and alice.tgz name the same student: keep one archive per "
                                         r"student in .*subs\.$"):
        grade(subs, real, tmp_path / "out", n=N, net=Unused(), cascade=None, progress=False)
    assert not (tmp_path / "out").exists()


def run_main(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_command_line_errors_are_one_sentence_and_exit_2(tmp_path, capsys):
    subs, real = setup_folders(tmp_path)
    (tmp_path / "empty").mkdir()
    out = ["--out", tmp_path / "out", "--features", "pixels"]
    cases = {  # submissions, reference: the start of the sentence
        (tmp_path / "absent", real): f"error: the submissions folder {tmp_path / 'absent'} does not exist: check",
        (real / "face.jpg", real): f"error: the submissions folder {real / 'face.jpg'} is a file, not a folder: pass",
        (tmp_path / "empty", real): f"error: no .tgz archive in {tmp_path / 'empty'}: pass the folder that holds",
        (subs, tmp_path / "absent"): f"error: the reference folder {tmp_path / 'absent'} does not exist",
        (subs, real / "face.jpg"): f"error: the reference folder {real / 'face.jpg'} is a file, not a folder",
        (subs, tmp_path / "empty"): f"error: the reference folder {tmp_path / 'empty'} holds no files: pass a folder",
    }
    for (submissions, reference_dir), start in cases.items():
        code, err = run_main(capsys, submissions, "--reference", reference_dir, *out)
        assert code == 2 and err.startswith(start) and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_the_grader_reads_archives_within_the_limits(tmp_path):
    from gan_lib.hw6.grade import read_archive
    from test_submission import make_tgz
    bomb = make_tgz(tmp_path / "bomb.tgz", {f"x{i}": b"" for i in range(2_001)})
    with pytest.raises(ValueError, match="holds more than 2,000 entries"):
        read_archive(bomb, n=N)


def test_command_line_grades_a_class_with_pixel_features(graded, tmp_path, capsys, monkeypatch):
    _, _, out = graded
    monkeypatch.setattr("gan_lib.hw6.grade._cascade", lambda: None)                  # no AFD: faster
    monkeypatch.setattr("gan_lib.hw6.grade.reference", partial(reference, cache_dir=None))   # no cache in ~/.cache
    code = main([str(out.parent / "submissions"), "--reference", str(out.parent / "real"), "--out",
                 str(tmp_path / "cli"), "--n", str(N), "--features", "pixels", "--kid-subsets", "5"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and "carol" in lines[0] and " pixel-FD " in lines[0] and "FID" not in "".join(lines)
    assert (tmp_path / "cli" / "grades.csv").is_file()
    code, err = run_main(capsys, out.parent / "submissions", "--reference", out.parent / "real", "--out",
                         tmp_path / "cli", "--n", N, "--features", "pixels")
    assert code == 2 and err.startswith(f"error: {tmp_path / 'cli'} already holds grades.csv and leaderboard.html")
