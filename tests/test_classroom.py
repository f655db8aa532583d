"""Classroom tools: student notebooks (stubs reached, no solutions left), the auto-checks, and the demo command."""
import ast
import subprocess
import textwrap
import sys
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from torch import nn

from gan_lib.teach import checks
from gan_lib.teach.lessons import (NOT_DONE_MESSAGE, _execute, exercise_places, main, make_student_version,
                             solution_regions)
from gan_lib.models import dcgan

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
STUB = "# YOUR CODE HERE"


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
def test_run_all_on_a_student_version_goes_past_every_stub(student_dir, lesson):
    """Jupyter's and Colab's "Run all" stop at the first exception: a student version with no exercise done, run
    in smoke mode up to its last stub or check, raises nowhere, and every stub says once that it is not done.
    (The cells after that are the solution notebook's, which nbval runs; the next test checks that they do not
    use what a stub leaves undone.)"""
    nb = nbformat.read(student_dir / lesson.name, as_version=4)
    stubs = [c.id for c in nb.cells if STUB in c.source]
    places = dict(zip((c.id for c in nb.cells), exercise_places(nb.cells)))
    nb.cells = nb.cells[:max(i for i, c in enumerate(nb.cells) if STUB in c.source or "gan_lib.teach.checks" in c.source) + 1]
    _execute(nb, lesson, smoke=True, allow_errors=True)              # in notebooks/, like the solution run
    errors = [f"cell {c.id}: {o.ename}: {o.evalue}" for c in nb.cells for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert not errors, (f"'Run all' would stop at {errors[0]}: only a check may call an unwritten exercise "
                        f"(pass it a function, e.g. check_generator_shapes(lambda: make_generator(...), ...)).")
    said = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.output_type == "stream")
    top_level = [s for s in stubs if NOT_DONE_MESSAGE.format(where=places[s]) in said]
    in_defs = said.count("is not written yet (it raises NotImplementedError)")
    assert len(top_level) + in_defs == len(stubs), (f"{len(stubs)} stubs, but {len(top_level)} printed 'not done "
                                                     f"yet' and {in_defs} checks said 'not written yet'.")


def _names(source: str, stored: bool) -> set[str]:
    """Names a cell assigns or defines (``stored``) or reads; IPython magics are dropped before parsing."""
    tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store if stored else ast.Load):
            found.add(node.id)
        elif stored and isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            found.add(node.name)
    return found


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_no_later_cell_needs_what_a_stub_leaves_undone(lesson):
    """A name defined only inside a solution region (or a function whose body is one) may be used later only by
    check cells, which cope with an unwritten exercise; anything else would fail in a student's "Run all"."""
    cells = nbformat.read(lesson, as_version=4).cells
    for i, cell in enumerate(cells):
        if cell.cell_type != "code" or not solution_regions(cell):
            continue
        lines = cell.source.splitlines()
        inside = "\n".join(l for b, e in solution_regions(cell) for l in lines[b + 1:e])
        undone = _names(textwrap.dedent(inside), stored=True) if not lines[solution_regions(cell)[0][0]].startswith(
            " ") else {n.name for n in ast.parse(cell.source).body if isinstance(n, ast.FunctionDef)}
        for later in cells[i + 1:]:
            if later.cell_type == "code" and "gan_lib.teach.checks" not in later.source and "check_" not in later.source:
                used = undone & _names(later.source, stored=False) - _names(later.source, stored=True)
                assert not used, (f"{lesson.name}: cell {later.id} uses {sorted(used)} from exercise cell {cell.id}: "
                                  f"in a student version it is undefined, so 'Run all' stops there.")


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
        "    raise NotImplementedError(\"Exercise: write your answer here (above the first heading)\")\n\nprint(f)",
        "# YOUR CODE HERE\nprint(\"Exercise not done yet (above the first heading): write your answer here and run "
        "this cell again.\")",
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


def _ends_in(*last):
    """A DCGAN-like generator (z (B, 100, 1, 1) -> (B, 3, 96, 96)) ending in ``last`` instead of tanh; small
    weights keep its untrained outputs inside [-1, 1], so only the structural test can catch it."""
    G = nn.Sequential(nn.Flatten(), nn.Linear(100, 3 * 96 * 96), *last, nn.Unflatten(1, (3, 96, 96)))
    nn.init.normal_(G[1].weight, std=1e-4)
    return G


@pytest.mark.parametrize("G, message", [
    (_ends_in(), "not bounded: .* ends without tanh"),
    (_ends_in(nn.BatchNorm1d(3 * 96 * 96)), "not bounded"),
    (_ends_in(nn.Sigmoid()), "never go below 0 .* sigmoid"),
    (nn.Sequential(nn.Linear(100, 3 * 96 * 96), nn.Tanh(), nn.Unflatten(1, (3, 96, 96))),   # wants (B, 100)
     "takes noise of shape \\(1, 100\\) but the lesson gives it \\(1, 100, 1, 1\\): start G with nn.Flatten"),
    (None, "not an nn.Module: does the function that builds it lack `return`"),
    (dcgan(64, g_width=8)[0], "has shape \\(1, 3, 64, 64\\), expected \\(1, 3, 96, 96\\)"),
    (nn.Sequential(nn.Flatten(), nn.Linear(100, 3 * 96 * 96), nn.Unflatten(1, (3, 96, 96))), "outside \\[-1, 1\\]"),
    (_ignores_z(), "same image for different z")])
def test_generator_shape_check_fails_on_typical_mistakes(G, message):
    with pytest.raises(AssertionError, match=message) as caught:
        checks.check_generator_shapes(G, 100, (3, 96, 96))
    assert caught.value.__cause__ is None and str(caught.value).count(": ") <= 2   # one sentence, no chained error
    assert G is None or G.training, "the check must give G its training mode back"


def test_a_generator_taking_4d_noise_given_flat_noise_is_told_so():
    G = nn.Sequential(nn.ConvTranspose2d(100, 3, 4), nn.Tanh())      # z (B, 100, 1, 1) -> (B, 3, 4, 4)
    with pytest.raises(AssertionError, match=r"takes noise of shape \(1, 100, 1, 1\) .* gives it \(1, 100\): add "
                                             r"nn.Unflatten"):
        checks.check_generator_shapes(G, 100, (3, 4, 4), noise=lambda n, d: torch.randn(n, d))
    checks.check_generator_shapes(G, 100, (3, 4, 4))                # the right noise passes


def _no_return(logits):
    F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def _gp_no_return(D, real, fake):
    penalty(D, real, fake)


def _not_done(*args):
    raise NotImplementedError("Exercise: write your answer here (cell x)")


@pytest.mark.parametrize("check, wrong, message", [
    (checks.check_discriminator_loss, lambda r, f, y: F.binary_cross_entropy(r, torch.full_like(r, y))
     + F.binary_cross_entropy(f, torch.zeros_like(f)), "passed logits to F.binary_cross_entropy, .* use F.binary_cross_entropy_with_logits"),
    (checks.check_generator_loss, _no_return, "generator_loss returned None: .* lacks `return`"),
    (checks.check_gradient_penalty, _gp_no_return, "gradient penalty returned None: .* lacks `return`"),
    (checks.check_gradient_penalty, lambda D, r, f: _eps_b1(D, r, f), "torch.rand\\(B, 1, 1, 1\\), not torch.rand\\(B, 1\\)"),
])
def test_common_slips_get_one_sentence_not_a_pytorch_error(check, wrong, message):
    with pytest.raises(AssertionError, match=message) as caught:
        check(wrong)
    assert caught.value.__cause__ is None and "\n" not in str(caught.value)


def _eps_b1(D, real, fake):
    eps = torch.rand(len(real), 1)                                   # (B, 1): does not broadcast over (B, 3, 4, 4)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


@pytest.mark.parametrize("check", [checks.check_discriminator_loss, checks.check_generator_loss,
                                   checks.check_gradient_penalty])
def test_an_unwritten_exercise_prints_one_line_and_does_not_stop_run_all(check, capsys):
    check(_not_done)                                                  # no exception
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "_not_done is not written yet" in out[0]


# ------------------------------------------------------------------------------------------ demo command

def test_demo_writes_html_and_fails_at_the_end(tmp_path):
    failing = _write(tmp_path / "01_fails.ipynb", new_code_cell("print('before the failure')"),
                     new_code_cell("raise ValueError('synthetic failure')"), new_code_cell("print('never')"))
    ok = _write(tmp_path / "02_ok.ipynb", new_code_cell("from gan_lib import smoke_mode\nprint('smoke', smoke_mode())"))
    run = subprocess.run([sys.executable, "-m", "gan_lib.teach.lessons", "demo", "--out", str(tmp_path / "demo"),
                          str(failing), str(ok)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "01_fails.ipynb" in run.stdout and "FAILED" in run.stdout and "1 of 2 lessons failed" in run.stdout
    failed_html = (tmp_path / "demo" / "01_fails.html").read_text()
    assert "before the failure" in failed_html and "synthetic failure" in failed_html
    assert "smoke True" in (tmp_path / "demo" / "02_ok.html").read_text()
    assert nbformat.read(tmp_path / "demo" / "02_ok.ipynb", as_version=4).cells[0].outputs
