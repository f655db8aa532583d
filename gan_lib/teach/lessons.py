"""Run lesson notebooks headless, make student versions of them, and write executed HTML copies.

Benchmarks and tests use ``run_notebook`` so that they measure exactly what a student runs. Command line:

    python -m gan_lib.teach.lessons clean [--pin] notebooks/*.ipynb          # clear outputs before committing
    python -m gan_lib.teach.lessons student notebooks/*.ipynb --out student/  # exercises become stubs (--force overwrites)
    python -m gan_lib.teach.lessons demo [--full] [--out demo/] [notebooks...] # run all lessons, HTML copies
                                                                      # (offline: demo/mathjax/)
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

from gan_lib.runtime import SMOKE_ENV

RESULT_MARK = "GAN_LIB_RESULT "


def read_notebook(path: Path):
    """``nbformat.read`` (version 4) that says in one sentence which file is missing or is not a notebook."""
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} {'is a folder' if path.is_dir() else 'does not exist'}: "
                                f"check the path (notebooks/NAME.ipynb from the repository root).")
    try:
        return nbformat.read(path, as_version=4)
    except OSError:
        raise
    except Exception:              # not JSON, or JSON that nbformat cannot convert (TypeError, KeyError, ...)
        raise ValueError(f"{path} is not a Jupyter notebook (not valid .ipynb JSON): "
                         f"pass the lesson's .ipynb file.") from None


def _execute(nb, path: Path, smoke: bool | None, timeout: int | None = 600, allow_errors: bool = False) -> None:
    """Run ``nb`` in place in a fresh kernel started in the notebook's folder; ``smoke`` None keeps the caller's mode.

    ``allow_errors=True`` runs every cell even after one fails (the errors are in the cells' outputs).
    """
    from nbclient import NotebookClient

    env = dict(os.environ)
    if smoke is not None:
        env[SMOKE_ENV] = "1" if smoke else "0"
    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                   resources={"metadata": {"path": str(path.parent)}}).execute(env=env)


def run_notebook(path, parameters: dict | None = None, smoke: bool | None = None,
                 timeout: int | None = 600, result_name: str = "result", executed: str | Path | None = None) -> dict:
    """Execute the notebook at ``path`` top to bottom and return its ``result`` dict.

    ``parameters`` are assigned in a new cell right after the cell tagged ``parameters``
    (papermill's convention); ``smoke`` sets smoke mode for the kernel (None keeps the caller's);
    ``timeout``: seconds per cell (None: no limit). ``executed``: a path where the executed notebook, with
    its outputs, is also written (even if a cell failed).
    Raises ``nbclient`` 's CellExecutionError, naming the cell, when a cell fails.
    """
    import nbformat

    path = Path(path)
    nb = read_notebook(path)
    if parameters:
        source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
        tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
        if not tagged:
            raise ValueError(f"{path.name} has no cell tagged 'parameters': tag the cell that sets the defaults.")
        nb.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    nb.cells.append(nbformat.v4.new_code_cell(
        f"import json as _json\nprint({RESULT_MARK!r} + _json.dumps({result_name}, default=float))"))

    try:
        _execute(nb, path, smoke, timeout)
    finally:
        if executed is not None:
            nbformat.write(nb, executed)
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
    nb = read_notebook(path)
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


SOLUTION_MARKS = {"code": ("### BEGIN SOLUTION", "### END SOLUTION"),
                  "markdown": ("<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->")}
STUB_MESSAGE = "Exercise: write your answer here ({where})"
NOT_DONE_MESSAGE = "Exercise not done yet ({where}): write your answer here and run this cell again."


def solution_regions(cell, where: str = "") -> list[tuple[int, int]]:
    """(begin, end) line numbers of the cell's solution regions; unbalanced or nested markers raise ValueError."""
    begin_mark, end_mark = SOLUTION_MARKS.get(cell.cell_type, (None, None))
    regions, begin = [], None
    for i, line in enumerate(cell.source.splitlines()):
        mark = line.strip()
        if mark not in (begin_mark, end_mark):
            continue
        if (mark == begin_mark) == (begin is not None):
            problem = ("a nested BEGIN SOLUTION", "close the open region first") if begin is not None else \
                      ("an END SOLUTION without a BEGIN", f"add {begin_mark!r} where the solution starts")
            raise ValueError(f"{where}cell {cell.get('id')} has {problem[0]} at line {i + 1}: {problem[1]}.")
        if mark == begin_mark:
            begin = i
        else:
            regions.append((begin, i))
            begin = None
    if begin is not None:
        raise ValueError(f"{where}cell {cell.get('id')} has a BEGIN SOLUTION at line {begin + 1} without an END: "
                         f"add {end_mark!r} after the solution.")
    return regions


HEADING = re.compile(r"^(#{1,6})\s+(.+?)[\s#]*$")          # "## 3. One training step" -> ("##", "3. One ...")
EXERCISE_TITLE = re.compile(r"^\*\*(Exercise\b.+?)\.?\*\*")  # "**Exercise 1 — more D steps.** Train ..."


def exercise_places(cells) -> list[str]:
    """Where a student finds each cell, in what the notebook shows: "§8 Exercises › Exercise 1 — more D steps".

    That is the ``##`` section above the cell ("## 8. Exercises" reads "§8 Exercises"), then the last deeper
    heading or bold "**Exercise ...**" title under it; cell ids, which Jupyter and Colab never show, are not used.
    """
    places, section, sub, fenced = [], "", "", False
    for cell in cells:
        for line in cell.source.splitlines() if cell.cell_type == "markdown" else []:
            fenced ^= line.lstrip().startswith("```")
            heading, title = HEADING.match(line), EXERCISE_TITLE.match(line.strip())
            if fenced or not (heading or title):
                continue
            text = (heading[2] if heading else title[1]).replace("*", "").strip()
            if heading and len(heading[1]) <= 2:                # "#" (the lesson's title) or "##" starts afresh
                section, sub = re.sub(r"^(\d+)\.\s*", r"§\1 ", text) if len(heading[1]) == 2 else "", ""
            else:
                sub = text
        places.append(" › ".join(filter(None, (section, sub))) or "above the first heading")
    return places


def _stub(lines: list[str], begin: int, cell, where: str) -> list[str]:
    """The lines that replace a solution region whose BEGIN marker is ``lines[begin]``; ``where`` names the place."""
    if cell.cell_type == "markdown":
        return ["YOUR ANSWER HERE"]
    indent = re.match(r"\s*", lines[begin]).group()    # a stub inside a def keeps the def's body indented
    if not indent:     # top level: print, so that "Run all" (which stops at an exception) goes on with the lesson
        return ["# YOUR CODE HERE", f"print({json.dumps(NOT_DONE_MESSAGE.format(where=where), ensure_ascii=False)})"]
    return [f"{indent}# YOUR CODE HERE",         # inside a def: its check cell catches this and prints one line
            f"{indent}raise NotImplementedError({json.dumps(STUB_MESSAGE.format(where=where), ensure_ascii=False)})"]


def student_notebook(src, dst):
    """The student version of the notebook ``src`` (to be written to ``dst``) and the number of its stubs.

    Every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region of a code cell becomes ``# YOUR CODE HERE`` and,
    inside a def, ``raise NotImplementedError(...)`` naming the exercise's place (the exercise's check cell catches
    it and prints one line), at top level a ``print`` of "Exercise not done yet": Jupyter's and Colab's "Run all"
    stop at the first exception, so nothing raises unless the student calls the stub. A markdown region between
    ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->`` becomes "YOUR ANSWER HERE". All outputs and
    execution counts are cleared, pinned cells' too.
    """
    src, dst = Path(src), Path(dst)
    if dst.resolve() == src.resolve():
        raise ValueError(f"{dst} is the solution notebook itself: write the student version to another folder.")
    nb = read_notebook(src)
    stubs = 0
    for cell, where in zip(nb.cells, exercise_places(nb.cells)):
        lines = cell.source.splitlines()
        for begin, end in reversed(solution_regions(cell, where=f"{src.name}: ")):
            lines[begin:end + 1] = _stub(lines, begin, cell, where)
            stubs += cell.cell_type == "code"
        cell.source = "\n".join(lines)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    return nb, stubs


def make_student_version(src, dst) -> int:
    """Write the student notebook of ``src`` (see ``student_notebook``) to ``dst``; return its number of stubs."""
    import nbformat

    nb, stubs = student_notebook(src, dst)
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return stubs


def write_student_versions(notebooks, out, force: bool = False) -> list[tuple[Path, int]]:
    """Write ``out/NAME.ipynb`` for each notebook; return (path, stubs) for each. Nothing is written when a file
    in ``out`` differs from what would replace it (it may be a student's own work) unless ``force``."""
    import nbformat

    out = Path(out)
    made = [(out / Path(src).name, *student_notebook(src, out / Path(src).name)) for src in notebooks]
    names = [dst.name for dst, _, _ in made]
    if len(set(names)) < len(names):
        raise ValueError(f"two notebooks are named {next(n for n in names if names.count(n) > 1)}: "
                         f"make their student versions in two runs with different --out folders.")
    lost = [dst.name for dst, nb, _ in made if dst.exists() and _as_json(dst) != json.loads(nbformat.writes(nb))]
    if lost and not force:
        files, many = (", ".join(lost[:-1]) + " and " + lost[-1], True) if len(lost) > 1 else (lost[0], False)
        raise ValueError(f"{out} already holds {files}, which differ{'' if many else 's'} from the student version "
                         f"(a student's own work?): pick another --out folder, or pass --force to overwrite "
                         f"{'them' if many else 'it'}.")
    out.mkdir(parents=True, exist_ok=True)
    for dst, nb, _ in made:
        nbformat.write(nb, dst)
    return [(dst, stubs) for dst, _, stubs in made]


def _as_json(path: Path):
    """The parsed JSON of a file, or None when it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return None


# nbconvert's lab template without what it loads from CDNs: require.js and the widget manager (widgets become
# static HTML, see static_widgets), mermaid.js (no lesson draws diagrams); MathJax's URL is the exporter's.
OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
<script type="text/x-mathjax-config">
MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], webFont: "STIX-Web", imageFont: null}});
</script>
{{ super() }}
{%- endblock html_head_js_mathjax -%}
"""
MATHJAX = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"    # relative to the HTML copy
WIDGET_VIEW, WIDGET_STATE = "application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json"
BAR_COLOURS = {"success": "#5cb85c", "info": "#5bc0de", "warning": "#f0ad4e", "danger": "#d9534f"}


def html_exporter(out):
    """nbconvert's HTMLExporter for copies in ``out`` that render offline: it copies MathJax to ``out/mathjax``
    (from the jupyter-server-mathjax package; without it, maths loads from a CDN, and it says so)."""
    import shutil

    import jinja2
    from nbconvert import HTMLExporter

    options = {"extra_loaders": [jinja2.DictLoader({"offline.html.j2": OFFLINE_TEMPLATE})],
               "template_file": "offline.html.j2"}
    try:
        import jupyter_server_mathjax
    except ImportError:
        print("note: the HTML copies load MathJax from the internet, so offline their maths shows as LaTeX: "
              "pip install jupyter-server-mathjax to render it offline.", flush=True)
        return HTMLExporter(**options)
    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", Path(out) / "mathjax",
                    dirs_exist_ok=True)
    return HTMLExporter(**options, mathjax_url=MATHJAX)


def _widget_html(models: dict, model_id: str) -> str | None:
    """Static HTML of a widget's saved state (boxes, HTML and labels, progress bars), None for any other widget."""
    import html

    model = models.get(model_id.removeprefix("IPY_MODEL_"))
    if model is None:                                   # closed before the notebook was saved
        return None
    name, state = model.get("model_name", ""), model.get("state", {})
    label = html.escape(state.get("description") or "")
    if name in ("HBoxModel", "VBoxModel", "BoxModel"):
        parts = [_widget_html(models, child) for child in state.get("children", [])]
        direction = "column" if name == "VBoxModel" else "row"
        return None if None in parts else (f'<div style="display:flex;flex-direction:{direction};gap:0.5em;'
                                           f'align-items:center">{"".join(parts)}</div>')
    if name in ("HTMLModel", "HTMLMathModel", "LabelModel"):
        value = state.get("value", "")                  # an HTML widget's value is HTML already
        return f"<span>{label} {value if name != 'LabelModel' else html.escape(value)}</span>"
    if name in ("FloatProgressModel", "IntProgressModel"):
        low = state.get("min", 0)
        colour = BAR_COLOURS.get(state.get("bar_style"), "#2196f3")
        return (f'<span>{label} <progress style="accent-color:{colour}" value="{state.get("value", 0) - low}" '
                f'max="{state.get("max", 100) - low}"></progress></span>')
    return None


def static_widgets(nb):
    """A copy of ``nb`` whose widget outputs (tqdm.auto's bars, ipywidgets) are static HTML of their saved state,
    so that an HTML copy needs no widget JavaScript; a widget without a static form shows its text/plain form."""
    import copy

    nb = copy.deepcopy(nb)
    models = nb.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).pop(WIDGET_VIEW, None)
            drawn = view and _widget_html(models, view.get("model_id", ""))
            if drawn:
                output.data["text/html"] = drawn
    return nb


def write_html(nb, path, exporter=None) -> None:
    """Write the HTML copy of the notebook ``nb`` to ``path``; it renders offline (see ``html_exporter``, made for
    ``path``'s folder when ``exporter`` is None)."""
    path = Path(path)
    exporter = exporter or html_exporter(path.parent)
    html, _ = exporter.from_notebook_node(static_widgets(nb), resources={"metadata": {"name": path.stem}})
    path.write_text(html, encoding="utf-8")


def run_demo(notebooks, out="demo", smoke: bool = True, timeout: int | None = None) -> list[str]:
    """Run each notebook headless and write ``out/NAME.ipynb`` and ``out/NAME.html``; return the names that failed.

    A failing lesson still gets both files, up to and including the cell that failed (with its traceback). The
    HTML copies render offline (``write_html``). ``timeout`` is per cell; None means 600 s in smoke mode and no
    limit in full mode (training takes long).
    """
    import nbformat

    lessons = [(Path(path), read_notebook(path)) for path in notebooks]     # every file readable before any runs
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    exporter, failed = html_exporter(out), []
    for path, nb in lessons:
        print(f"running {path.name} ({'smoke' if smoke else 'full'} mode) ...", flush=True)
        started, status = time.perf_counter(), "ok"
        try:
            _execute(nb, path, smoke=smoke, timeout=timeout or (600 if smoke else None))
        except Exception as err:                           # report it, keep what ran, go on with the next lesson
            failed.append(path.name)
            reason = str(getattr(err, "evalue", err)).strip().splitlines()[:1]
            status = f"FAILED with {getattr(err, 'ename', type(err).__name__)}: {''.join(reason)}"
        nbformat.write(nb, out / path.name)
        write_html(nb, out / f"{path.stem}.html", exporter)
        print(f"{path.name}: {time.perf_counter() - started:.0f} s, {status} -> {out / path.stem}.html", flush=True)
    return failed


def main(argv=None) -> int:
    """The command line: ``clean``, ``student`` and ``demo`` (see the module docstring); returns the exit code."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m gan_lib.teach.lessons")
    sub = parser.add_subparsers(dest="command", required=True)
    clean = sub.add_parser("clean", help="clear outputs before committing (pinned cells keep theirs)")
    clean.add_argument("--pin", action="store_true", help="re-run in smoke mode to refresh pinned outputs")
    clean.add_argument("notebooks", nargs="+")
    student = sub.add_parser("student", help="write student notebooks: solutions become stubs, no outputs")
    student.add_argument("notebooks", nargs="+")
    student.add_argument("--out", default="student", help="folder for the student notebooks (default: student/)")
    student.add_argument("--force", action="store_true",
                         help="overwrite notebooks in --out that differ from the student version (a student's work)")
    demo = sub.add_parser("demo", help="run lessons headless and write executed .ipynb and .html copies")
    demo.add_argument("notebooks", nargs="*", help="default: notebooks/[0-9]*.ipynb")
    demo.add_argument("--full", action="store_true", help="full mode instead of smoke mode")
    demo.add_argument("--out", default="demo", help="folder for the executed copies (default: demo/)")
    args = parser.parse_args(argv)
    try:
        return _run_command(args, parser)
    except (OSError, ValueError) as err:               # a missing file, not a notebook, broken markers, ...
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run_command(args, parser) -> int:
    """Do what ``main`` parsed; bad input raises OSError or ValueError with one sentence."""
    if args.command == "clean":
        for nb_path in args.notebooks:                  # all readable before any is changed
            read_notebook(nb_path)
        for nb_path in args.notebooks:
            clean_notebook(nb_path, pin=args.pin)
            print(f"cleaned {nb_path}")
    elif args.command == "student":
        for dst, stubs in write_student_versions(args.notebooks, args.out, force=args.force):
            print(f"wrote {dst} ({stubs} stub{'s' * (stubs != 1)})")
    else:
        notebooks = args.notebooks or sorted(Path("notebooks").glob("[0-9]*.ipynb"))
        if not notebooks:
            parser.error("no notebooks given and none match notebooks/[0-9]*.ipynb: run it from the repository root.")
        failed = run_demo(notebooks, args.out, smoke=not args.full)
        if failed:
            print(f"{len(failed)} of {len(notebooks)} lessons failed: {', '.join(failed)}")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
