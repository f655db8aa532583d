"""Lesson 05 end to end in smoke mode, with the optional hinge row: every row trains under the same budget, is
scored beside the real-vs-real floor, and the best one makes a valid HW6 archive. A second session (an instructor's
Run all over finished rows) trains and scores nothing; one after a Colab disconnect loads the finished rows,
continues the one cut off (and scores it again), and refuses changed settings."""
from pathlib import Path

import pytest
from nbclient.exceptions import CellExecutionError

from conftest import SHARED_DATA
from gan_lib.checkpoints import load_checkpoint, save_checkpoint
from gan_lib.teach.lessons import run_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_modern_gan.ipynb"
ROWS = ["DCGAN", "+ EMA", "+ layer-norm D", "+ R1", "+ DiffAugment", "+ StyleGAN2 G", "+ residual D",
        "+ StyleGAN2's Adam", "+ hinge"]
SCORING = "scores N_EVAL=8 N_REF=32 features=pixels kid_subsets=2"     # the notebook's remember() name at N_EVAL 8


def test_every_row_trains_for_the_budget_and_the_best_is_submitted(tmp_path):
    r = run_notebook(NOTEBOOK, smoke=True, parameters={
        "ROWS": ROWS, "BUDGET_S": 1.0, "N_IMAGES": 48, "N_EVAL": 8, "N_SUBMISSION": 4,
        "SUBMISSION_DIR": str(tmp_path / "submission"), "CHECKPOINT_DIR": str(tmp_path / "rows")})
    assert list(r["rows"]) == ["real vs real"] + ROWS
    for row in ROWS:
        got = r["rows"][row]
        assert got["steps"] >= 1 and got["seconds"] >= 1.0 and got["images_per_s"] > 0
        assert 0 <= got["diversity"] < 3
    assert r["this_session"] == {"trained": {row: r["rows"][row]["steps"] for row in ROWS}, "scored": ROWS}
    assert r["best"] in ROWS and r["submission_valid"]
    rows = r["rows"]                           # the lowest KID among the rows that draw varied faces (or of all)
    faces = [row for row in ROWS if rows[row].get("afd", 1.0) >= 0.5 * rows[row].get("afd_real", 1.0)
             and rows[row]["diversity"] >= 0.5 * rows[row]["diversity_real"]]
    assert r["best"] == min(faces or ROWS, key=lambda row: rows[row]["kid_mean"])
    assert len(list((tmp_path / "submission").glob("*.jpg"))) == 4
    assert len(list((tmp_path / "rows").glob("*/last.pt"))) == len(ROWS)      # every finished row is on disk


def test_a_second_session_over_finished_rows_trains_nothing_and_scores_nothing(tmp_path):
    rows = tmp_path / "rows"
    common = {"N_IMAGES": 48, "N_EVAL": 8, "N_SUBMISSION": 2, "RESUME": True, "CHECKPOINT_DIR": str(rows),
              "SUBMISSION_DIR": str(tmp_path / "submission")}                # the lesson's eight rows
    first = run_notebook(NOTEBOOK, smoke=True, parameters=common)
    files = {path: path.stat().st_mtime_ns for path in rows.rglob("*") if path.is_file()}
    lesson_rows = list(first["rows"])[1:]                           # after "real vs real"
    for row, folder in zip(lesson_rows, ["dcgan", "ema", "layer_norm_d", "r1", "diffaugment",
                                              "stylegan2_g", "residual_d", "stylegan2_s_adam"], strict=True):
        saved = load_checkpoint(rows / folder / "last.pt")["run"]     # the row's scores were saved with it
        assert saved["results"][SCORING]["kid_mean"] == first["rows"][row]["kid_mean"] and \
            saved["step"] == first["rows"][row]["steps"]
    assert first["this_session"]["scored"] == lesson_rows

    second = run_notebook(NOTEBOOK, smoke=True, parameters=common)
    assert second["this_session"] == {"trained": {row: 0 for row in first["this_session"]["trained"]},
                                      "scored": []}                   # no step trained, no score computed
    assert second["rows"] == first["rows"] and second["best"] == first["best"] and second["submission_valid"]
    assert {path: path.stat().st_mtime_ns for path in rows.rglob("*") if path.is_file()} == files   # nothing saved


def test_a_second_session_loads_finished_rows_continues_a_cut_one_and_refuses_other_settings(tmp_path):
    rows = tmp_path / "rows"
    common = {"ROWS": ["DCGAN", "+ EMA"], "N_IMAGES": 48, "N_EVAL": 8, "N_SUBMISSION": 2, "RESUME": True,
              "CHECKPOINT_DIR": str(rows), "SAVE_EVERY_S": 0,              # BUDGET_S 0.5 s; a save after every step
              "SUBMISSION_DIR": str(tmp_path / "submission")}
    first = run_notebook(NOTEBOOK, smoke=True, parameters=common)["rows"]
    finished, cut = rows / "dcgan" / "last.pt", rows / "ema" / "last.pt"
    saved_at = finished.stat().st_mtime_ns
    state = load_checkpoint(cut)                # "+ EMA" as if the session had died half-way through its budget
    assert state["run"]["seconds"] == first["+ EMA"]["seconds"] >= 0.5
    assert state["run"]["step"] == first["+ EMA"]["steps"]
    assert SCORING in state["run"]["results"]   # scored at its end: a run trained further must be scored again
    state["run"]["seconds"] = 0.25
    save_checkpoint(cut, state)

    second = run_notebook(NOTEBOOK, smoke=True, parameters=common)
    rows_now, session = second["rows"], second["this_session"]
    assert (rows_now["DCGAN"]["steps"], rows_now["DCGAN"]["seconds"]) == (first["DCGAN"]["steps"],
                                                                          first["DCGAN"]["seconds"])  # nothing trained
    assert finished.stat().st_mtime_ns == saved_at                                      # nor saved, nor scored
    trained = session["trained"]["+ EMA"]
    assert session["trained"]["DCGAN"] == 0 and trained > 0 and session["scored"] == ["+ EMA"]
    assert rows_now["+ EMA"]["steps"] == first["+ EMA"]["steps"] + trained             # on from the cut step
    continued = load_checkpoint(cut)["run"]
    assert continued["step"] == rows_now["+ EMA"]["steps"]
    assert continued["seconds"] == rows_now["+ EMA"]["seconds"] >= 0.5                # the same budget in all
    assert continued["results"][SCORING]["kid_mean"] == rows_now["+ EMA"]["kid_mean"]  # the new scores are saved

    with pytest.raises(CellExecutionError,
                       match=r"dcgan/last\.pt was trained with other settings \(dcgan_width 4 -> 8\)"):
        run_notebook(NOTEBOOK, smoke=True, parameters=dict(common, DCGAN_WIDTH=8))


@pytest.mark.skipif(not (SHARED_DATA / "anime-faces-64").is_dir(), reason="needs the shared real faces")
def test_lesson_reads_the_real_faces_when_they_are_there(tmp_path):
    r = run_notebook(NOTEBOOK, smoke=True, parameters={
        "DATA_DIR": str(SHARED_DATA / "anime-faces-64"), "ROWS": ["DCGAN"], "N_IMAGES": 32, "N_EVAL": 8,
        "N_SUBMISSION": 2, "SUBMISSION_DIR": str(tmp_path / "s")})
    assert r["source"] == "your folder" and r["rows"]["real vs real"]["diversity"] > 0.1
