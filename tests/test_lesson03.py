"""Lesson 03 as a student uses it: an interrupted run resumes from its checkpoint folder."""
from pathlib import Path

from gan_lib.lessons import run_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_anime_dcgan.ipynb"
TINY = {"N_IMAGES": 64, "BATCH": 16, "FAIL_STEPS": 1, "N_EVAL": 32, "SAMPLE_EVERY": 2}


def test_a_second_session_resumes_where_the_first_stopped(tmp_path):
    common = dict(TINY, CHECKPOINT_DIR=str(tmp_path / "ckpt"), RESUME=True,
                  SUBMISSION_DIR=str(tmp_path / "submission"))
    first = run_notebook(NOTEBOOK, parameters=dict(common, STEPS=4), smoke=True)
    assert first["steps"] == 4 and first["submission_valid"]
    assert (tmp_path / "ckpt" / "last.pt").is_file()
    assert sorted(p.name for p in (tmp_path / "ckpt" / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]

    second = run_notebook(NOTEBOOK, parameters=dict(common, STEPS=6), smoke=True)
    assert second["steps"] == 6          # 4 restored + 2 trained, not 6 from scratch
    assert second["resumed_from"] == 4
