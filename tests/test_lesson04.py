"""Lesson 04 as an instructor uses it: variants already trained in the checkpoint folder are loaded, not retrained,
nor rescored; their training time is the one their run saved, and a changed setting is refused instead of silently
reloaded."""
from pathlib import Path

import pytest
from nbclient.exceptions import CellExecutionError

from gan_lib.checkpoints import load_checkpoint
from gan_lib.teach.lessons import run_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "04_wgan_gp.ipynb"


def test_a_second_session_loads_every_run_and_refuses_changed_settings(tmp_path):
    common = {"N_IMAGES": 64, "BATCH": 16, "STUDY_STEPS": 1, "N_EVAL": 16, "CHECKPOINT_DIR": str(tmp_path),
              "RESUME": True, "STEPS": 2}
    first = run_notebook(NOTEBOOK, parameters=common, smoke=True)
    assert set(first["resumed_from"].values()) == {0} and len(first["resumed_from"]) == 7    # 4 variants, 3 study runs
    assert len(list(tmp_path.glob("*/last.pt"))) == 7
    rows = first["rows"]                                                   # scored by gan_lib.eval.evaluate
    assert len(rows) == 4 and first["features"] == "pixels"                # smoke mode: pooled pixels
    assert all({"fid", "fid_real", "kid_mean", "recall", "diversity_real"} <= row.keys() for row in rows.values())
    assert first["table"].splitlines()[2].startswith("real vs real")
    assert sorted(first["scored"]) == sorted(rows)                         # each variant scored once, this session
    second = run_notebook(NOTEBOOK, parameters=common, smoke=True)
    assert {name: step for name, step in second["resumed_from"].items() if step != 2} == {
        "study_wganclip001": 1, "study_wganhw6clip10": 1, "study_wgangp": 1}              # every run loaded
    saved = {name: load_checkpoint(tmp_path / "".join(ch for ch in name.lower() if ch.isalnum()) / "last.pt")
             ["run"]["seconds"] for name in first["seconds"]}
    assert second["seconds"] == saved == first["seconds"]   # exactly the time saved: not re-timed, no load time
    assert second["scored"] == []                           # no score computed: each read back from its last.pt ...
    assert second["rows"] == rows and second["table"] == first["table"]                  # ... and the same numbers
    with pytest.raises(CellExecutionError, match=r"trained with other settings \(.*width 16 -> 8"):
        run_notebook(NOTEBOOK, parameters=dict(common, WIDTH=8), smoke=True)
