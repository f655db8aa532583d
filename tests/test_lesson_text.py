"""What the lessons' text says: student-facing cells never speak of the project's issues, and the keys they tell a
student to use are the keys gan_lib returns."""
import re
from pathlib import Path

import nbformat
import pytest
import torch

from gan_lib.eval.evaluate import evaluate, feature_network, reference

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.ipynb"))
LESSON05 = Path(__file__).resolve().parents[1] / "notebooks" / "05_modern_gan.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_cell_mentions_issues(path):
    cells = nbformat.read(path, as_version=4).cells
    said = [(c.get("id"), m.group()) for c in cells for m in re.finditer(r"[^\n]*\bissues?\b[^\n]*", c.source, re.I)]
    assert not said, f"student-facing text speaks of issues: {said}"


def test_lesson05_keeps_the_best_by_a_key_that_evaluate_returns():
    text = "\n".join(c.source for c in nbformat.read(LESSON05, as_version=4).cells if c.cell_type == "markdown")
    suggested = set(re.findall(r"keep_best_by=\"(\w+)\"", text))
    net, _ = feature_network("pixels")
    real = torch.rand(24, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1   # (24, 3, 64, 64)
    returned = evaluate(real[:8], reference(real, net=net, cascade=None, progress=False), net=net, kid_subsets=2)
    assert suggested and suggested <= returned.keys(), (suggested, sorted(returned))
