"""The teacher tools' command line (python -m gan_lib.teach.lessons): safe student folders, one-sentence errors, stubs a
student can find, and offline HTML copies. Fast: no lesson is executed here."""
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from gan_lib.teach import lessons
from gan_lib.teach.lessons import main, make_student_version

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def _lesson(path, *cells):
    nbformat.write(new_notebook(cells=list(cells)), path)
    return path


def _exercise(path):
    return _lesson(path, new_markdown_cell("## 3. The losses\n\n### Exercise: the D loss", id="md-3"),
                   new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", id="ex-x"))


# --------------------------------------------------------------------------- student: a student's work is kept

def test_student_refuses_to_overwrite_a_changed_notebook_unless_forced(tmp_path, capsys):
    src, out = _exercise(tmp_path / "01_a.ipynb"), tmp_path / "student"
    assert main(["student", str(src), "--out", str(out)]) == 0                # a new folder: quiet
    assert main(["student", str(src), "--out", str(out)]) == 0                # identical file: quiet
    capsys.readouterr()
    mine = (out / "01_a.ipynb").read_text().replace("# YOUR CODE HERE", "x = 42  # my answer")
    (out / "01_a.ipynb").write_text(mine)
    assert main(["student", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {out} already holds 01_a.ipynb, which differs from the student version (a student's "
                   f"own work?): pick another --out folder, or pass --force to overwrite it.\n")
    assert (out / "01_a.ipynb").read_text() == mine, "the student's work must be left as it was."
    assert main(["student", str(src), "--out", str(out), "--force"]) == 0
    assert "my answer" not in (out / "01_a.ipynb").read_text()


def test_student_writes_nothing_when_any_file_would_be_lost(tmp_path, capsys):
    a, b, out = _exercise(tmp_path / "01_a.ipynb"), _exercise(tmp_path / "02_b.ipynb"), tmp_path / "student"
    out.mkdir()
    (out / "02_b.ipynb").write_text("my notes, not even JSON")
    assert main(["student", str(a), str(b), "--out", str(out)]) == 2
    assert "already holds 02_b.ipynb, which differs" in capsys.readouterr().err
    assert not (out / "01_a.ipynb").exists() and (out / "02_b.ipynb").read_text() == "my notes, not even JSON"


def test_two_changed_files_are_both_named(tmp_path, capsys):
    a, b, out = _exercise(tmp_path / "01_a.ipynb"), _exercise(tmp_path / "02_b.ipynb"), tmp_path / "student"
    out.mkdir()
    for name in ("01_a.ipynb", "02_b.ipynb"):
        (out / name).write_text("{}")
    assert main(["student", str(a), str(b), "--out", str(out)]) == 2
    assert "holds 01_a.ipynb and 02_b.ipynb, which differ from the student version" in capsys.readouterr().err


# --------------------------------------------------------------------------- one sentence for a bad file

@pytest.mark.parametrize("command", [["student", "--out", "OUT"], ["clean"]], ids=["student", "clean"])
@pytest.mark.parametrize("make, problem", [
    (lambda p: None, "does not exist: check the path"),
    (lambda p: p.write_text("print('a script, not a notebook')"), "is not a Jupyter notebook (not valid .ipynb JSON)"),
    (lambda p: p.write_text('{"cells": 3}'), "is not a Jupyter notebook"),
], ids=["missing", "not-json", "not-a-notebook"])
def test_a_bad_notebook_gets_one_sentence_naming_it(tmp_path, capsys, command, make, problem):
    bad = tmp_path / "01_bad.ipynb"
    make(bad)
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in command] + [str(bad)]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"error: {bad} {problem}") and err.count("\n") == 1, err
    assert "Traceback" not in out + err and not (tmp_path / "out").exists()


def test_clean_changes_nothing_when_a_later_notebook_is_missing(tmp_path, capsys):
    done = new_code_cell("print(1)", execution_count=1, outputs=[new_output("stream", name="stdout", text="1\n")])
    good = _lesson(tmp_path / "01_good.ipynb", done)
    assert main(["clean", str(good), str(tmp_path / "02_missing.ipynb")]) == 2
    assert "02_missing.ipynb does not exist" in capsys.readouterr().err
    assert nbformat.read(good, as_version=4).cells[0].outputs, "01 was cleaned although the command failed."


# --------------------------------------------------------------------------- stubs name what a student sees

def test_stubs_name_the_section_and_exercise_title(tmp_path):
    src = _lesson(tmp_path / "01_a.ipynb",
                  new_markdown_cell("# Lesson 01\n\n## 2. The game\n\n```\n## not a heading\n```", id="cell-01"),
                  new_markdown_cell("## 8. Exercises\n\n**Exercise 1 — more D steps.** Train with `k=5`.", id="cell-27"),
                  new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", id="cell-28"),
                  new_markdown_cell('### Exercise: the "R1" penalty', id="4aa784db"),
                  new_code_cell("def r1(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION", id="ab12cd34"))
    make_student_version(src, tmp_path / "student" / "01_a.ipynb")
    cells = nbformat.read(tmp_path / "student" / "01_a.ipynb", as_version=4).cells
    assert cells[2].source.splitlines()[1] == ('print("Exercise not done yet (§8 Exercises › Exercise 1 — more D '
                                               'steps): write your answer here and run this cell again.")')
    assert cells[4].source.splitlines()[2] == ('    raise NotImplementedError("Exercise: write your answer here '
                                               '(§8 Exercises › Exercise: the \\"R1\\" penalty)")')
    assert lessons.exercise_places(cells)[:2] == ["§2 The game", "§8 Exercises › Exercise 1 — more D steps"]


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_no_stub_names_a_raw_cell_id(tmp_path, lesson):
    make_student_version(lesson, tmp_path / lesson.name)
    cells = nbformat.read(tmp_path / lesson.name, as_version=4).cells
    ids = {c.id for c in cells}
    said = [line for c in cells for line in c.source.splitlines()
            if "Exercise not done yet" in line or "NotImplementedError(" in line]
    assert said, f"{lesson.name}: no stub message found."
    for line in said:
        message = re.search(r'"(.*)"', line)[1]
        assert "(cell " not in message and not any(i in message for i in ids), f"{lesson.name}: {message}"
        assert "§" in message, f"{lesson.name}: the stub does not name its section: {message}"


# --------------------------------------------------------------------------- demo: HTML copies work offline

def _tqdm_bar(done, total):
    """What a finished tqdm.auto bar leaves in a notebook: a widget view (with its first text/plain) and state."""
    def model(name, **state):
        return {"model_module": "@jupyter-widgets/controls", "model_name": name, "state": state}
    state = {"box": model("HBoxModel", children=["IPY_MODEL_left", "IPY_MODEL_bar", "IPY_MODEL_right"]),
             "left": model("HTMLModel", description="", value="train:\u2007100%"),
             "bar": model("FloatProgressModel", bar_style="success", min=0.0, max=float(total), value=float(done)),
             "right": model("HTMLModel", value=f"\u2007{done}/{total}\u2007[00:01&lt;00:00,\u200750.0it/s]"),
             "slider": model("IntSliderModel", value=3)}
    outputs = [new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {
                   "model_id": "box", "version_major": 2, "version_minor": 0},
                   "text/plain": f"train:   0%|          | 0/{total} [00:00<?, ?it/s]"}),
               new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {
                   "model_id": "slider", "version_major": 2, "version_minor": 0}, "text/plain": "IntSlider(value=3)"})]
    return outputs, {"application/vnd.jupyter.widget-state+json": {"state": state, "version_major": 2,
                                                                    "version_minor": 0}}


def test_demo_html_renders_maths_and_progress_without_a_network(tmp_path):
    pytest.importorskip("jupyter_server_mathjax", reason="the test extra's jupyter-server-mathjax ships MathJax")
    outputs, widgets = _tqdm_bar(20, 20)
    nb = new_notebook(cells=[new_markdown_cell("The square $x^2$ and $$\\frac{\\gamma}{2}\\lVert g \\rVert_2^2$$"),
                             new_code_cell("for _ in trange(20, desc='train'): pass", outputs=outputs)],
                      metadata={"widgets": widgets})
    lessons.write_html(nb, tmp_path / "demo" / "01_a.html")
    html = (tmp_path / "demo" / "01_a.html").read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
    remote = [tag + body for tag, body in scripts if re.search(r"https?://|//cdn|unpkg", tag + body)]
    assert not remote, f"the HTML still loads from the network: {remote[0][:200]}"
    sources = [re.search(r'src="([^"]+)"', tag)[1] for tag, _ in scripts if "src=" in tag]
    mathjax = [src for src in sources if "MathJax.js" in src]
    assert mathjax, "no MathJax script in the HTML: its maths would show as raw LaTeX."
    for src in sources:
        assert (tmp_path / "demo" / src.split("?")[0]).is_file(), f"{src} is not beside the HTML."
    config = re.search(r"config=([^,&\"]+)", mathjax[0])[1]
    assert (tmp_path / "demo" / "mathjax" / "config" / f"{config}.js").is_file()
    assert "$x^2$" in html                                       # MathJax typesets it in the browser
    # the bar as it ended, not the widget's first text/plain ("0/20") nor an empty widget <div>
    assert re.search(r'<progress [^>]*max="20.0"', html) and re.search(r'<progress [^>]*value="20.0"', html)
    assert "train:\u2007100%" in html and "20/20" in html and "0/20 [00:00" not in html
    assert "IntSlider(value=3)" in html                          # no static form: its text/plain is shown
    assert "widget-state+json" not in html and "widget-view+json" not in html


def test_without_jupyter_server_mathjax_the_html_says_maths_needs_the_internet(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "jupyter_server_mathjax", None)     # import fails
    lessons.write_html(new_notebook(cells=[new_markdown_cell("$x^2$")]), tmp_path / "01_a.html")
    assert "pip install jupyter-server-mathjax" in capsys.readouterr().out
    assert not (tmp_path / "mathjax").exists() and (tmp_path / "01_a.html").is_file()


def test_demo_checks_every_notebook_exists_before_running_any(tmp_path, capsys):
    ok = _lesson(tmp_path / "01_ok.ipynb", new_code_cell("print(1)"))
    assert main(["demo", "--out", str(tmp_path / "demo"), str(ok), str(tmp_path / "02_missing.ipynb")]) == 2
    assert "02_missing.ipynb does not exist" in capsys.readouterr().err and not (tmp_path / "demo").exists()
