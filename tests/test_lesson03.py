"""Lesson 03 as a student and an instructor use it: a first session trains, scores and checkpoints every run; a
second one with the finished runs in CHECKPOINT_DIR (the instructor's "Run all" before class) trains no step and
computes no score, reading the scores back from the runs' checkpoints; a longer STEPS continues the main run from
its checkpoint while the finished failure demos and section 8's trainer run are loaded; changed settings are
refused; the generator kept is the averaged G of the step with the lowest KID; without a face detector keep-best
goes on by KID, without AFD. Smoke mode hands in a small submission."""
import shutil
from pathlib import Path

import nbformat
import pytest

from gan_lib.checkpoints import load_checkpoint
from gan_lib.teach.lessons import run_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_anime_dcgan.ipynb"
TINY = {"N_IMAGES": 64, "BATCH": 16, "FAIL_STEPS": 1, "N_EVAL": 32, "SAMPLE_EVERY": 2, "EVAL_EVERY": 2,
        "N_SCORE": 16}


def parameters(folder: Path, **values) -> dict:
    return dict(TINY, CHECKPOINT_DIR=str(folder / "ckpt"), RESUME=True, SUBMISSION_DIR=str(folder / "submission"),
                **values)


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """A first session of 4 steps in a fresh CHECKPOINT_DIR (RESUME on, as in full mode): (its folder, result)."""
    folder = tmp_path_factory.mktemp("lesson03_first")
    return folder, run_notebook(NOTEBOOK, parameters=parameters(folder, STEPS=4), smoke=True)


def copy_of(first, tmp_path: Path) -> Path:
    """A copy of the first session's CHECKPOINT_DIR (file times kept), so that each test starts from it."""
    shutil.copytree(first[0] / "ckpt", tmp_path / "ckpt")
    return tmp_path


def saved_files(folder: Path) -> dict:
    """Every checkpoint under ``folder`` (the main run, the failure demos, section 8's run) and its mtime."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*.pt"))}


def test_a_first_session_trains_scores_checkpoints_and_submits(first):
    folder, r = first
    assert r["steps"] == 4 and r["trained"] == 4 and r["resumed_from"] is None and r["submission_valid"]
    assert r["submission_n"] == 16 == len(list((folder / "submission").glob("*.jpg")))     # smoke: not 1,000
    assert r["features"] == "pixels" and r["n"] == 32 and r["fid"] > 0 and "recall_real" in r
    assert (folder / "ckpt" / "last.pt").is_file()
    assert (folder / "ckpt" / "2gpu" / "checkpoints" / "last.pt").is_file()                 # section 8's trainer run
    assert sorted(p.name for p in (folder / "ckpt" / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]
    # keep-best: scored at steps 2 and 4; best.pt holds the step with the lowest KID, and it was used
    assert [e["step"] for e in r["evals"]] == [2, 4]
    first_score = r["evals"][0]
    assert {"kid_mean", "kid_mean_real", "fid", "afd", "diversity_real", "precision"} <= set(first_score)
    assert all(first_score[f"{name}_real"] != first_score[name] for name in ("kid_mean", "fid", "diversity"))
    best = min(r["evals"], key=lambda e: e["kid_mean"])
    best_pt = load_checkpoint(folder / "ckpt" / "best.pt")
    assert r["best_step"] == best["step"] == best_pt["step"]
    assert best_pt["checkpoint"]["metrics"]["kid_mean"] == best["kid_mean"]
    assert all(f["loaded_at"] is None for f in r["failures"].values())
    # the scores: two during training, the last raw G's, and the final evaluation, each computed once
    assert r["computed"] == ["score", "score", "score", "evaluate"]
    results = load_checkpoint(folder / "ckpt" / "last.pt")["run"]["results"]
    assert sorted(name.split(",")[0] for name in results) == sorted([f"evaluate the averaged G (best step {best['step']})",
                                                                     "KID of the raw G"])


def test_the_instructors_second_run_trains_nothing_and_scores_nothing(first, tmp_path):
    """Issue 20: with the finished runs in CHECKPOINT_DIR, Run all loads every run and reads every score back."""
    folder = copy_of(first, tmp_path)
    before = saved_files(folder / "ckpt")
    second = run_notebook(NOTEBOOK, parameters=parameters(folder, STEPS=4), smoke=True)
    assert second["trained"] == 0 and second["resumed_from"] == 4 == second["steps"]
    assert all(f["loaded_at"] == 1 for f in second["failures"].values()), "finished failure demos must be loaded"
    assert second["computed"] == [], "a loaded run's scores must be read back, not computed again"
    assert saved_files(folder / "ckpt") == before, "nothing may be trained, scored or saved again"
    assert {"last.pt", "best.pt", "2gpu/checkpoints/last.pt"} <= set(before)      # the main run, section 8's
    assert sum(name.startswith("failures/") for name in before) == 4                # and the 4 failure demos
    old = first[1]
    for key in ("evals", "best_step", "kept", "fid", "kid_mean", "recall", "diversity", "features", "failures"):
        assert second[key] == (old[key] if key != "failures" else
                               {name: {**f, "loaded_at": 1} for name, f in old[key].items()}), key


def test_a_longer_run_continues_and_changed_settings_are_refused(first, tmp_path):
    folder = copy_of(first, tmp_path)
    ddp_last = folder / "ckpt" / "2gpu" / "checkpoints" / "last.pt"
    ddp_saved_at = ddp_last.stat().st_mtime_ns
    second = run_notebook(NOTEBOOK, parameters=parameters(folder, STEPS=6), smoke=True)
    assert second["steps"] == 6 and second["trained"] == 2   # 4 restored + 2 trained, not 6 from scratch
    assert second["resumed_from"] == 4
    assert [e["step"] for e in second["evals"]] == [2, 4, 6]
    assert len(second["failures"]) == 4
    assert all(f["loaded_at"] == 1 for f in second["failures"].values()), "finished failure demos must be loaded"
    assert ddp_last.stat().st_mtime_ns == ddp_saved_at, "section 8's finished trainer run must be loaded, not retrained"
    # a run trained further is scored afresh: step 6's evaluation, its raw G and its final evaluation
    assert second["computed"] == ["score", "score", "evaluate"]

    with pytest.raises(Exception, match=r"other settings \(.*lr.*0\.0002.*0\.0001"):
        run_notebook(NOTEBOOK, parameters=parameters(folder, STEPS=6, LR=1e-4), smoke=True)


def test_without_a_face_detector_keep_best_goes_on_by_kid(tmp_path):
    r = run_notebook(NOTEBOOK, smoke=True, parameters=dict(
        TINY, STEPS=4, FACE_CASCADE=str(tmp_path / "no-detector-here.xml"), CHECKPOINT_DIR=str(tmp_path / "ckpt"),
        SUBMISSION_DIR=str(tmp_path / "submission")))
    assert [e["step"] for e in r["evals"]] == [2, 4] and not any("afd" in e for e in r["evals"])
    assert r["best_step"] == min(r["evals"], key=lambda e: e["kid_mean"])["step"] and r["no_best"] is None
    assert "afd" not in r and r["submission_valid"]                   # scored and submitted without AFD
    assert r["computed"] == ["score", "score", "score", "evaluate"]


def test_a_run_stopped_before_its_first_score_keeps_the_last_averaged_g(tmp_path):
    r = run_notebook(NOTEBOOK, smoke=True, parameters=dict(
        TINY, STEPS=1, CHECKPOINT_DIR=str(tmp_path / "ckpt"), SUBMISSION_DIR=str(tmp_path / "submission")))
    assert r["evals"] == [] and r["best_step"] is None and r["kept"] == "averaged"
    assert r["no_best"] == ("no score yet (the first is at step 2), so no best step to keep: sampling and submitting "
                            "from the last averaged G (step 1)")
    assert r["computed"] == ["evaluate"]


def test_lesson03_makes_no_unmeasured_t4_claim_and_keeps_its_gpu_request():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "under 30 minutes on a T4" not in text
    assert "on a T4 the time is unmeasured" in text
    assert nb.metadata.get("accelerator") == "GPU"   # lesson 03 wants a GPU in full mode


def test_lesson03_builds_with_the_recipe_and_resumes_only_through_checkpoints():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert code.count('build("dcgan"') == 2 and "print(recipe)" in code     # the demos and the main run
    assert "torch.optim.Adam(" not in code and "resume()" not in code and "train_or_load" not in code
    assert "until=STEPS" in code and "until=FAIL_STEPS" in code and "resume=RESUME" in code
    assert "--recipe dcgan " in code
    for gone in ("CheckpointManager", "make_ema", "restore_training_state", "history[\"samples\"]", "on_step=",
                 "sample_every=", "steps=max(", "extras="):
        assert gone not in code, gone
