"""Lesson 01 in full mode for one seed meets the per-seed target (benchmarks/ checks five seeds)."""
from pathlib import Path

import nbformat
import pytest

from gan_lib.lessons import run_notebook

ROOT = Path(__file__).resolve().parents[1]


def test_lesson01_full_mode_one_seed_meets_the_target():
    r = run_notebook(ROOT / "notebooks" / "01_gaussian_1d.ipynb", parameters={"SEED": 1}, smoke=False)
    assert r["steps"] == 8000, "the full-mode run must not take smoke mode's step count"
    assert abs(r["mean"] - 4.0) <= 0.1, r
    assert abs(r["std"] - 1.25) <= 0.1, r
    assert r["w1"] <= 0.2, r
    assert r["seconds"] <= 60, r


def test_run_notebook_injects_parameters_and_reads_the_result(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("X = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("from gan_lib import smoke_mode\nresult = {'x2': X * 2, 'smoke': smoke_mode()}")]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    assert run_notebook(path, parameters={"X": 21}, smoke=False) == {"x2": 42, "smoke": False}
    assert run_notebook(path, smoke=True)["smoke"] is True


def test_run_notebook_without_parameters_cell_says_so(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("result = {}")]
    path = tmp_path / "untagged.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        run_notebook(path, parameters={"X": 1})
