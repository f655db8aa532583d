"""Lesson 04 as an instructor uses it: variants already trained in the checkpoint folder are loaded, not retrained."""
from pathlib import Path

from gan_lib.lessons import run_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "04_wgan_gp.ipynb"


def test_a_second_session_continues_every_variant_from_its_checkpoint(tmp_path):
    common = {"N_IMAGES": 64, "BATCH": 16, "STUDY_STEPS": 1, "N_EVAL": 16, "CHECKPOINT_DIR": str(tmp_path),
              "RESUME": True}
    first = run_notebook(NOTEBOOK, parameters=dict(common, STEPS=2), smoke=True)
    assert set(first["resumed_from"].values()) == {0} and len(first["resumed_from"]) == 4
    assert len(list(tmp_path.glob("*/last.pt"))) == 4
    second = run_notebook(NOTEBOOK, parameters=dict(common, STEPS=3), smoke=True)
    assert set(second["resumed_from"].values()) == {2}     # each variant went on from step 2
