"""Lesson 03 as a student uses it: an interrupted run resumes from its checkpoint folder, finished runs (the main
run, the failure demos and section 8's trainer run) are loaded instead of trained, changed settings are refused,
and the generator kept is the averaged G of the best-scoring step; without a face detector the lesson goes on
with the last averaged G and says why. Smoke mode hands in a small submission."""
from pathlib import Path

import nbformat
import pytest

from gan_lib.checkpoints import load_checkpoint
from gan_lib.teach.lessons import run_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_anime_dcgan.ipynb"
TINY = {"N_IMAGES": 64, "BATCH": 16, "FAIL_STEPS": 1, "N_EVAL": 32, "SAMPLE_EVERY": 2, "EVAL_EVERY": 2,
        "N_SCORE": 16}


def test_a_second_session_resumes_loads_finished_runs_and_refuses_other_settings(tmp_path):
    common = dict(TINY, CHECKPOINT_DIR=str(tmp_path / "ckpt"), RESUME=True,
                  SUBMISSION_DIR=str(tmp_path / "submission"))
    first = run_notebook(NOTEBOOK, parameters=dict(common, STEPS=4), smoke=True)
    assert first["steps"] == 4 and first["submission_valid"]
    assert first["submission_n"] == 16 == len(list((tmp_path / "submission").glob("*.jpg")))   # smoke: not 1,000
    ddp_last = tmp_path / "ckpt" / "2gpu" / "checkpoints" / "last.pt"                   # section 8's trainer run
    ddp_saved_at = ddp_last.stat().st_mtime_ns
    assert first["features"] == "pixels" and first["n"] == 32 and first["fid"] > 0 and "recall_real" in first
    assert (tmp_path / "ckpt" / "last.pt").is_file()
    assert sorted(p.name for p in (tmp_path / "ckpt" / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]
    # keep-best: scored at steps 2 and 4; best.pt holds the first step with the highest score, and it was used
    assert [e["step"] for e in first["evals"]] == [2, 4]
    best = max(first["evals"], key=lambda e: e["score"])
    assert first["best_step"] == best["step"] == load_checkpoint(tmp_path / "ckpt" / "best.pt")["step"]
    assert all(f["loaded_at"] is None for f in first["failures"].values())

    second = run_notebook(NOTEBOOK, parameters=dict(common, STEPS=6), smoke=True)
    assert second["steps"] == 6          # 4 restored + 2 trained, not 6 from scratch
    assert second["resumed_from"] == 4
    assert [e["step"] for e in second["evals"]] == [2, 4, 6]
    assert len(second["failures"]) == 4
    assert all(f["loaded_at"] == 1 for f in second["failures"].values()), "finished failure demos must be loaded"
    assert ddp_last.stat().st_mtime_ns == ddp_saved_at, "section 8's finished trainer run must be loaded, not retrained"

    with pytest.raises(Exception, match=r"other settings \(.*lr.*0\.0002.*0\.0001"):
        run_notebook(NOTEBOOK, parameters=dict(common, STEPS=6, LR=1e-4), smoke=True)


def test_without_a_face_detector_the_lesson_goes_on_with_the_last_averaged_g(tmp_path):
    r = run_notebook(NOTEBOOK, smoke=True, parameters=dict(
        TINY, STEPS=4, FACE_CASCADE=str(tmp_path / "no-detector-here.xml"), CHECKPOINT_DIR=str(tmp_path / "ckpt"),
        SUBMISSION_DIR=str(tmp_path / "submission")))
    assert r["evals"] == [] and r["best_step"] is None and r["kept"] == "averaged"
    assert r["no_best"] == ("no face detector (section 4 says why), so no best step to keep: sampling and submitting "
                            "from the last averaged G (step 4)")
    assert "afd" not in r and r["submission_valid"]                   # scored and submitted without AFD


def test_lesson03_makes_no_unmeasured_t4_claim_and_keeps_its_gpu_request():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "under 30 minutes on a T4" not in text
    assert "on a T4 the time is unmeasured" in text
    assert nb.metadata.get("accelerator") == "GPU"   # lesson 03 wants a GPU in full mode
