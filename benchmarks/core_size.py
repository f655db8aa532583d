"""How big gan_lib's core is, and what the lessons hand-write: the counts issue 20 asks for.

    python benchmarks/core_size.py

Prints the lines of every module (docstrings and comments included, as `wc -l` counts them): the core (the
modules at the top of gan_lib/, what the lessons import to build and train), its reading path (models, losses,
train) and each subpackage; the number of parameters of ``train``; and, per notebook, how often its code calls
``torch.optim.Adam(`` and whether a cell defines resume logic of its own.
"""
from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gan_lib"
READING_PATH = ("models.py", "losses.py", "train.py")


def lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def core() -> dict[str, int]:
    """Lines per core module (the modules at the top of gan_lib/)."""
    return {path.name: lines(path) for path in sorted(PACKAGE.glob("*.py"))}


def notebooks() -> dict[str, tuple[int, list[int]]]:
    """Per notebook: how often its code calls ``torch.optim.Adam(``, and the code cells that define resume logic."""
    found = {}
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = ["".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
        resume = [i for i, cell in enumerate(cells)
                  if re.search(r"\.resume\(|\.load\(\)|restore\(|def \w*(resume|train_or_load|train_for)\w*\(", cell)]
        found[notebook.name] = (sum(cell.count("torch.optim.Adam(") for cell in cells), resume)
    return found


def main() -> None:
    counts = core()
    print(f"{'core module':28s} {'lines':>6s}")
    for name, n in counts.items():
        print(f"  {name:26s} {n:6,}")
    print(f"{'core (gan_lib/*.py)':28s} {sum(counts.values()):6,}   target <= 2,000")
    print(f"{'reading path':28s} {sum(counts[name] for name in READING_PATH):6,}   "
          f"({' + '.join(READING_PATH)}; target <= 700)")
    for package in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()):
        print(f"{'gan_lib/' + package.name + '/':28s} {sum(map(lines, package.glob('*.py'))):6,}   (not core)")

    from gan_lib.train import train
    print(f"train() parameters: {len(inspect.signature(train).parameters)}   target <= 12")

    print(f"\n{'notebook':28s} {'Adam(':>6s}  cells that define resume logic")
    for name, (adam, resume) in notebooks().items():
        print(f"  {name:26s} {adam:6d}  {resume or 'none'}")


if __name__ == "__main__":
    main()
