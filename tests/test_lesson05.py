"""Lesson 05 end to end in smoke mode, with the optional hinge row: every row trains under the same budget, is
scored beside the real-vs-real floor, and the best one makes a valid HW6 archive."""
from pathlib import Path

import pytest

from conftest import SHARED_DATA
from gan_lib.lessons import run_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_modern_gan.ipynb"
ROWS = ["DCGAN", "+ EMA", "+ R1", "+ DiffAugment", "+ StyleGAN2 G, residual D", "+ hinge"]


def test_every_row_trains_for_the_budget_and_the_best_is_submitted(tmp_path):
    r = run_notebook(NOTEBOOK, smoke=True, parameters={
        "ROWS": ROWS, "BUDGET_S": 1.0, "N_IMAGES": 48, "N_EVAL": 8, "N_SUBMISSION": 4,
        "SUBMISSION_DIR": str(tmp_path / "submission")})
    assert list(r["rows"]) == ["real vs real"] + ROWS
    for row in ROWS:
        got = r["rows"][row]
        assert got["steps"] >= 1 and got["seconds"] >= 1.0 and got["images_per_s"] > 0
        assert 0 <= got["diversity"] < 3
    assert r["best"] in ROWS and r["submission_valid"]
    assert len(list((tmp_path / "submission").glob("*.jpg"))) == 4


@pytest.mark.skipif(not (SHARED_DATA / "anime-faces-64").is_dir(), reason="needs the shared real faces")
def test_lesson_reads_the_real_faces_when_they_are_there(tmp_path):
    r = run_notebook(NOTEBOOK, smoke=True, parameters={
        "DATA_DIR": str(SHARED_DATA / "anime-faces-64"), "ROWS": ["DCGAN"], "N_IMAGES": 32, "N_EVAL": 8,
        "N_SUBMISSION": 2, "SUBMISSION_DIR": str(tmp_path / "s")})
    assert r["source"] == "your folder" and r["rows"]["real vs real"]["diversity"] > 0.1
