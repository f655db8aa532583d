"""The project's own files agree with each other: dependencies, clean notebooks, README and CI."""
import json
import re
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from gan_lib.teach.lessons import is_pinned

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _normalise(requirement: str) -> str:
    requirement = requirement.split(";")[0]  # drop environment markers
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement).groups()
    return re.sub(r"[-_.]+", "-", name).lower() + spec.replace(" ", "")


# The extras environment.yml installs; any other extra is pip-only and must be named here on purpose.
CONDA_EXTRAS = ("test", "lab", "fid")
PIP_ONLY_EXTRAS = ()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert sorted(extras) == sorted(CONDA_EXTRAS + PIP_ONLY_EXTRAS), (
        f"pyproject's extras {sorted(extras)} are not those tests/test_packaging.py knows: add the new extra to "
        f"CONDA_EXTRAS (and its packages to environment.yml) or to PIP_ONLY_EXTRAS.")
    assert any(_normalise(r).startswith("jupyterlab") for r in extras["lab"]), "the lab extra lost jupyterlab."
    wanted = {_normalise(r) for r in project["dependencies"] + [r for e in CONDA_EXTRAS for r in extras[e]]}

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    listed = set()
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        listed |= {_normalise(d) for d in items if not d.startswith(("-e", "python", "pip"))}
    assert listed == wanted, (f"environment.yml lacks {sorted(wanted - listed)} and has extra "
                              f"{sorted(listed - wanted)}: update it to match pyproject.toml.")


def test_python_requirement_agrees():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert f"python{project['requires-python']}" in env["dependencies"]


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebook_is_clean(nb_path):
    """Notebooks are committed without outputs; only `# NBVAL_CHECK_OUTPUT` cells keep the output (and the
    execution count) that nbval compares against."""
    nb = json.loads(nb_path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        cell = dict(cell, source="".join(cell["source"]))
        if is_pinned(cell):
            assert cell["outputs"] and cell["execution_count"], \
                f"pinned cell {i} has no stored output: run `python -m gan_lib.teach.lessons clean --pin`."
        else:
            assert cell["execution_count"] is None and not cell["outputs"], \
                f"cell {i} carries outputs or an execution count: run `python -m gan_lib.teach.lessons clean`."


def test_every_lesson_exists_and_has_parameters_cell():
    names = [p.name for p in NOTEBOOKS]
    assert "01_gaussian_1d.ipynb" in names
    for nb_path in NOTEBOOKS:
        nb = json.loads(nb_path.read_text())
        tags = [t for c in nb["cells"] for t in c.get("metadata", {}).get("tags", [])]
        assert "parameters" in tags, f"{nb_path.name}: tag the cell that sets SEED and step counts 'parameters'."


def test_ci_runs_readmes_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"<!-- test-command -->\s*```bash\n(.+?)\n```", readme, re.S)
    assert len(commands) == 1, "README must mark exactly one test command with <!-- test-command -->"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "test-command" in ci, ".ci/run must read the test command from README"
