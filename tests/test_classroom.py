"""Classroom tools: student notebooks (stubs reached, no solutions left), the auto-checks, and the demo command."""
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from torch import nn

from gan_lib import checks
from gan_lib.lessons import STUB_MESSAGE, _execute, main, make_student_version, solution_regions
from gan_lib.models import dcgan

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
STUB = "raise NotImplementedError(\"Exercise"


def _write(path, *cells):
    nb = new_notebook(cells=list(cells))
    nbformat.write(nb, path)
    return path


# ------------------------------------------------------------------------------------- student notebooks

@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    assert main(["student", *map(str, LESSONS), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_student_notebook_is_valid_without_solutions_or_outputs(student_dir, lesson):
    nb = nbformat.read(student_dir / lesson.name, as_version=4)
    nbformat.validate(nb)
    solution = nbformat.read(lesson, as_version=4)
    regions = sum(len(solution_regions(c)) for c in solution.cells if c.cell_type == "code")
    assert regions, f"{lesson.name} has no ### BEGIN SOLUTION region: every lesson should have an exercise."
    assert sum(c.source.count(STUB) for c in nb.cells) == regions, "every solution region should become one stub."
    for cell in nb.cells:
        assert "SOLUTION" not in cell.source, f"cell {cell.id} still has a solution marker."
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"cell {cell.id} keeps an output."


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_every_stub_is_reached(student_dir, lesson):
    """Run the student notebook in smoke mode up to the last cell with a stub or a check: every stub raises
    NotImplementedError (from its own cell or from the check that calls it), and nothing else fails."""
    nb = nbformat.read(student_dir / lesson.name, as_version=4)
    stubs = {c.id for c in nb.cells if STUB in c.source}
    last = max(i for i, c in enumerate(nb.cells) if STUB in c.source or "gan_lib.checks" in c.source)
    nb.cells = nb.cells[:last + 1]
    _execute(nb, lesson, smoke=True, allow_errors=True)              # in notebooks/, like the solution run
    reached = set()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type != "error":
                continue
            stub = next((s for s in stubs if out.evalue == STUB_MESSAGE.format(cell=s)), None)
            assert out.ename == "NotImplementedError" and stub, \
                f"cell {cell.id} failed with {out.ename}: {out.evalue}; only the exercise stubs may fail."
            reached.add(stub)
    assert reached == stubs, f"stubs never reached: {sorted(stubs - reached)}"


def test_make_student_version_replaces_regions_and_clears_outputs(tmp_path):
    pinned = new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)", id="pinned", execution_count=1,
                           outputs=[new_output("stream", name="stdout", text="1\n")])
    src = _write(tmp_path / "lesson.ipynb", pinned,
                 new_code_cell("def f(x):\n    y = 2\n    ### BEGIN SOLUTION\n    return x * y\n    ### END SOLUTION\n"
                               "\nprint(f)", id="ex-def"),
                 new_code_cell("### BEGIN SOLUTION\nz = 3\n### END SOLUTION", id="ex-whole"),
                 new_markdown_cell("Why?\n<!-- BEGIN SOLUTION -->\nBecause.\n<!-- END SOLUTION -->", id="ex-md"))
    assert make_student_version(src, tmp_path / "student" / "lesson.ipynb") == 2
    nb = nbformat.read(tmp_path / "student" / "lesson.ipynb", as_version=4)
    assert [c.source for c in nb.cells] == [
        "# NBVAL_CHECK_OUTPUT\nprint(1)",
        "def f(x):\n    y = 2\n    # YOUR CODE HERE\n"
        "    raise NotImplementedError(\"Exercise: write your answer here (cell ex-def)\")\n\nprint(f)",
        "# YOUR CODE HERE\nraise NotImplementedError(\"Exercise: write your answer here (cell ex-whole)\")",
        "Why?\nYOUR ANSWER HERE"]
    assert nb.cells[0].outputs == [] and nb.cells[0].execution_count is None
    with pytest.raises(ValueError, match="solution notebook itself"):
        make_student_version(src, src)


@pytest.mark.parametrize("source, problem", [
    ("### END SOLUTION", "END SOLUTION without a BEGIN"),
    ("### BEGIN SOLUTION\nx = 1", "without an END"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n### END SOLUTION", "nested BEGIN")])
def test_bad_markers_name_the_notebook_and_cell(tmp_path, source, problem):
    src = _write(tmp_path / "broken.ipynb", new_code_cell(source, id="ex-bad"))
    with pytest.raises(ValueError, match=f"broken.ipynb: cell ex-bad has .*{problem}"):
        make_student_version(src, tmp_path / "out.ipynb")


# ------------------------------------------------------------------------------------------- the checks

def d_loss(real, fake, real_label):
    return (F.binary_cross_entropy_with_logits(real, torch.full_like(real, real_label))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def g_loss(fake):
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


def penalty(D, real, fake, reduce=lambda norms: ((norms - 1) ** 2).mean(), flat=lambda g: g.flatten(1).norm(2, dim=1),
            per_pixel=False, create_graph=True):
    eps = torch.rand_like(real) if per_pixel else torch.rand(len(real), 1, 1, 1)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=create_graph)
    return reduce(flat(grad))


def test_checks_pass_on_the_reference_answers(capsys):
    checks.check_discriminator_loss(d_loss)
    checks.check_generator_loss(g_loss)
    checks.check_generator_shapes(dcgan(96, g_width=8)[0], 100, (3, 96, 96))
    checks.check_generator_shapes(nn.Sequential(nn.Linear(10, 12), nn.Tanh(), nn.Unflatten(1, (3, 2, 2))), 10,
                                  (3, 2, 2), noise=lambda n, d: torch.randn(n, d))
    checks.check_gradient_penalty(penalty)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and all(line.startswith("✓ ") for line in lines)


@pytest.mark.parametrize("check, wrong, message", [
    (checks.check_discriminator_loss, lambda r, f, y: d_loss(r, f, y) / 2, "real_label=1.0 the loss is"),
    (checks.check_discriminator_loss, lambda r, f, y: d_loss(r, f, 1.0), "real_label=0.9 .* smooth only the real"),
    (checks.check_discriminator_loss,   # smoothing the fake side too
     lambda r, f, y: d_loss(r, f, y) + F.binary_cross_entropy_with_logits(f, torch.full_like(f, 1 - y))
     - F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)), "real_label=0.9"),
    (checks.check_discriminator_loss, lambda r, f, y: d_loss(r, f, y).item(), "returned float, not a 0-d tensor"),
    (checks.check_generator_loss, lambda f: -F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)),
     "not log\\(1 - D\\(G\\(z\\)\\)\\)"),
    (checks.check_generator_loss, lambda f: F.binary_cross_entropy_with_logits(f, torch.ones_like(f), reduction="none"),
     "shape \\(4, 1\\), not a 0-d tensor"),
    (checks.check_gradient_penalty, lambda D, r, f: penalty(D, r, f, reduce=lambda n: (n - 1).mean()),
     "gradient 2-norm 3.0 the penalty is 2.00000, expected"),
    (checks.check_gradient_penalty, lambda D, r, f: penalty(D, r, f, flat=lambda g: g.norm().expand(len(g))),
     "each sample's 2-norm"),
    (checks.check_gradient_penalty, lambda D, r, f: penalty(D, r, f, flat=lambda g: g.flatten(1).norm(1, dim=1)),
     "each sample's 2-norm"),
    (checks.check_gradient_penalty, lambda D, r, f: penalty(D, r, f, per_pixel=True), "one eps per sample"),
    (checks.check_gradient_penalty, lambda D, r, f: penalty(D, r, f, create_graph=False), "create_graph=True"),
])
def test_checks_fail_on_typical_mistakes(check, wrong, message):
    with pytest.raises(AssertionError, match=message):
        check(wrong)


def _ignores_z():
    G = nn.Sequential(nn.Flatten(), nn.Linear(100, 3 * 96 * 96), nn.Tanh(), nn.Unflatten(1, (3, 96, 96)))
    nn.init.zeros_(G[1].weight)                                      # every z gives tanh(bias)
    return G


@pytest.mark.parametrize("G, message", [
    (dcgan(64, g_width=8)[0], "has shape \\(1, 3, 64, 64\\), expected \\(1, 3, 96, 96\\)"),
    (nn.Sequential(nn.Flatten(), nn.Linear(100, 3 * 96 * 96), nn.Unflatten(1, (3, 96, 96))), "outside \\[-1, 1\\]"),
    (_ignores_z(), "same image for different z")])
def test_generator_shape_check_fails_on_typical_mistakes(G, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_generator_shapes(G, 100, (3, 96, 96))
    assert G.training, "the check must give G its training mode back"


# ------------------------------------------------------------------------------------------ demo command

def test_demo_writes_html_and_fails_at_the_end(tmp_path):
    failing = _write(tmp_path / "01_fails.ipynb", new_code_cell("print('before the failure')"),
                     new_code_cell("raise ValueError('synthetic failure')"), new_code_cell("print('never')"))
    ok = _write(tmp_path / "02_ok.ipynb", new_code_cell("from gan_lib import smoke_mode\nprint('smoke', smoke_mode())"))
    run = subprocess.run([sys.executable, "-m", "gan_lib.lessons", "demo", "--out", str(tmp_path / "demo"),
                          str(failing), str(ok)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "01_fails.ipynb" in run.stdout and "FAILED" in run.stdout and "1 of 2 lessons failed" in run.stdout
    failed_html = (tmp_path / "demo" / "01_fails.html").read_text()
    assert "before the failure" in failed_html and "synthetic failure" in failed_html
    assert "smoke True" in (tmp_path / "demo" / "02_ok.html").read_text()
    assert nbformat.read(tmp_path / "demo" / "02_ok.ipynb", as_version=4).cells[0].outputs
