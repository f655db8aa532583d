"""Issue 20's size limits, counted as benchmarks/core_size.py prints them: a change that grows the core past them
fails here, not in a later review."""
import inspect
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import core_size  # noqa: E402

from gan_lib.train import train  # noqa: E402


def test_the_core_and_its_reading_path_stay_within_their_line_limits():
    counts = core_size.core()
    assert set(core_size.READING_PATH) <= set(counts) and "__init__.py" in counts
    assert sum(counts.values()) <= 2000, counts
    assert sum(counts[name] for name in core_size.READING_PATH) <= 700, counts


def test_train_takes_at_most_12_parameters():
    assert len(inspect.signature(train).parameters) <= 12


def test_no_notebook_writes_resume_logic_and_only_lessons_01_02_build_adam_by_hand():
    found = core_size.notebooks()
    assert len(found) == 5 and all(resume == [] for _, resume in found.values()), found
    assert {name for name, (adam, _) in found.items() if adam} <= {"01_gaussian_1d.ipynb", "02_mnist_mlp_gan.ipynb"}
