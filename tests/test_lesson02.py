"""Lesson 02 in smoke mode: the data source it records (in the result and in the checkpoint's settings, which
resume compares) names the data set, so that a change of data set is noticed on resume."""
from pathlib import Path

from gan_lib.checkpoints import load_checkpoint
from gan_lib.teach.lessons import run_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_mnist_mlp_gan.ipynb"


def test_the_data_source_recorded_is_the_data_sets_not_the_source_of_train(tmp_path):
    r = run_notebook(NOTEBOOK, smoke=True, parameters={
        "STEPS": 4, "EXERCISE_STEPS": 2, "SAMPLE_EVERY": 2, "N_DIGITS": 200, "MNIST_DOWNLOAD": False,
        "CHECKPOINT_DIR": str(tmp_path / "ckpt"), "TENSORBOARD_DIR": None})
    assert r["source"].startswith("offline subset shipped with gan_lib"), r["source"]
    saved = load_checkpoint(tmp_path / "ckpt" / "last.pt")["checkpoint"]["settings"]
    assert saved["data"] == r["source"], saved
