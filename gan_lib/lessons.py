"""Run a lesson notebook headless, with parameters, and read back its ``result``.

Benchmarks and tests use this so that they measure exactly what a student runs.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from gan_lib.runtime import SMOKE_ENV

RESULT_MARK = "GAN_LIB_RESULT "


def _execute(nb, path: Path, smoke: bool | None, timeout: int = 600) -> None:
    """Run ``nb`` in place in a fresh kernel started in the notebook's folder; ``smoke`` None keeps the caller's mode."""
    from nbclient import NotebookClient

    env = dict(os.environ)
    if smoke is not None:
        env[SMOKE_ENV] = "1" if smoke else "0"
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute(env=env)


def run_notebook(path, parameters: dict | None = None, smoke: bool | None = None,
                 timeout: int = 600, result_name: str = "result") -> dict:
    """Execute the notebook at ``path`` top to bottom and return its ``result`` dict.

    ``parameters`` are assigned in a new cell right after the cell tagged ``parameters``
    (papermill's convention); ``smoke`` sets smoke mode for the kernel (None keeps the caller's).
    Raises ``nbclient`` 's CellExecutionError, naming the cell, when a cell fails.
    """
    import nbformat

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    if parameters:
        source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
        tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
        if not tagged:
            raise ValueError(f"{path.name} has no cell tagged 'parameters': tag the cell that sets the defaults.")
        nb.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    nb.cells.append(nbformat.v4.new_code_cell(
        f"import json as _json\nprint({RESULT_MARK!r} + _json.dumps({result_name}, default=float))"))

    _execute(nb, path, smoke, timeout)
    for output in nb.cells[-1].get("outputs", []):
        for line in output.get("text", "").splitlines():
            if line.startswith(RESULT_MARK):
                return json.loads(line[len(RESULT_MARK):])
    raise RuntimeError(f"{path.name} ran but printed no {result_name!r}: does the notebook define it?")


PIN_MARK = "# NBVAL_CHECK_OUTPUT"


def is_pinned(cell) -> bool:
    """A code cell whose output nbval compares: its first line is ``# NBVAL_CHECK_OUTPUT``."""
    return cell.get("cell_type") == "code" and cell.get("source", "").lstrip().startswith(PIN_MARK)


def clean_notebook(path, pin: bool = False) -> None:
    """Clear outputs and execution counts, except in pinned cells (nbval needs both of theirs).

    With ``pin=True`` the notebook is first run in smoke mode so that pinned cells get fresh outputs.
    """
    import copy

    import nbformat

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    if pin:
        executed = copy.deepcopy(nb)
        _execute(executed, path, smoke=True)
        for cell, ran in zip(nb.cells, executed.cells):
            if is_pinned(cell):
                cell.outputs, cell.execution_count = ran.outputs, ran.execution_count
    for cell in nb.cells:
        if cell.cell_type == "code" and not is_pinned(cell):
            cell.execution_count = None
            cell.outputs = []
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


def main(argv=None) -> None:
    """``python -m gan_lib.lessons clean [--pin] notebooks/*.ipynb``"""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m gan_lib.lessons")
    sub = parser.add_subparsers(dest="command", required=True)
    clean = sub.add_parser("clean", help="clear outputs before committing (pinned cells keep theirs)")
    clean.add_argument("--pin", action="store_true", help="re-run in smoke mode to refresh pinned outputs")
    clean.add_argument("notebooks", nargs="+")
    args = parser.parse_args(argv)
    for nb_path in args.notebooks:
        clean_notebook(nb_path, pin=args.pin)
        print(f"cleaned {nb_path}")


if __name__ == "__main__":
    main()
