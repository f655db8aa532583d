"""Lesson 01 in full mode for one seed meets the per-seed quality target (benchmarks/lesson01_seeds.py checks
five seeds and reports the time)."""
import re
from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pytest

from gan_lib.teach.lessons import run_notebook, solution_regions
from gan_lib.plots import plot_density_snapshots

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "notebooks" / "01_gaussian_1d.ipynb"


def test_lesson01_full_mode_one_seed_meets_the_target():
    r = run_notebook(ROOT / "notebooks" / "01_gaussian_1d.ipynb", parameters={"SEED": 1}, smoke=False)
    assert r["steps"] == 8000, "the full-mode run must not take smoke mode's step count"
    assert abs(r["mean"] - 4.0) <= 0.1, r
    assert abs(r["std"] - 1.25) <= 0.1, r
    assert r["w1"] <= 0.2, r          # no wall-clock assertion: benchmarks/lesson01_seeds.py reports the time


def test_run_notebook_injects_parameters_and_reads_the_result(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("X = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("from gan_lib import smoke_mode\nresult = {'x2': X * 2, 'smoke': smoke_mode()}")]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    assert run_notebook(path, parameters={"X": 21}, smoke=False) == {"x2": 42, "smoke": False}
    assert run_notebook(path, smoke=True)["smoke"] is True


def test_run_notebook_writes_the_executed_copy_even_when_a_cell_fails(tmp_path):
    from nbclient.exceptions import CellExecutionError
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("X = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("print('X is', X)"), nbformat.v4.new_code_cell("1 / 0")]
    path, out = tmp_path / "fails.ipynb", tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(CellExecutionError, match="ZeroDivisionError"):
        run_notebook(path, parameters={"X": 7}, smoke=True, executed=out)
    cells = nbformat.read(out, as_version=4).cells
    assert cells[1].source == "X = 7" and cells[2].outputs[0]["text"] == "X is 7\n"
    assert cells[3].outputs[0]["ename"] == "ZeroDivisionError"


def test_run_notebook_without_parameters_cell_says_so(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("result = {}")]
    path = tmp_path / "untagged.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        run_notebook(path, parameters={"X": 1})


def test_lesson01_does_not_ask_colab_for_a_gpu():
    meta = nbformat.read(LESSON, as_version=4).metadata
    assert "accelerator" not in meta and "gpuType" not in meta.get("colab", {}), meta


def test_lesson01_opens_with_the_intuition_and_answers_its_open_questions():
    nb = nbformat.read(LESSON, as_version=4)
    first_formula = next(i for i, c in enumerate(nb.cells) if "$$" in c.source)
    assert any("forger" in c.source and "detective" in c.source for c in nb.cells[:first_formula])
    answers = [c for c in nb.cells if c.cell_type == "markdown" and "Your answer" in c.source]
    assert len(answers) == 2 and all(solution_regions(c) for c in answers)


def test_density_snapshots_scale_each_panel_to_its_own_histogram():
    rng = np.random.default_rng(0)
    spike, spread = np.full(1000, 0.05), rng.normal(4, 1.25, 1000)        # an early spike, a later wide histogram
    fig = plot_density_snapshots({0: spike, 100: spread}, lambda x: np.exp(-(x - 4) ** 2 / 3.125) / 3.13, (-1, 9))
    spike_ax, spread_ax = fig.axes
    assert spike_ax.get_ylim()[1] > 5 and spread_ax.get_ylim()[1] < 1, "a shared y-axis flattens the later panel"


def test_section7_quotes_no_number_of_one_run_and_names_the_benchmarks_command_and_torch():
    cells = nbformat.read(LESSON, as_version=4).cells
    table = next(i for i, c in enumerate(cells) if '"recipe, averaged G"' in c.source)    # prints this run's rows
    text = cells[table + 1].source
    this_run, _, benchmark = text.partition("`python benchmarks/lesson01_seeds.py`")
    assert not re.findall(r"\d\.\d\d", this_run), "this run's numbers are the table's, not the text's"
    assert re.search(r"PyTorch\s+\d+\.\d+\.\d+", benchmark), "a benchmark's numbers name the torch version"
