"""`pip install git+...` (every lesson's first cell) must ship what the lessons load, not only gan_lib/*.py.

Builds the wheel from this checkout, installs it into a fresh folder, and loads the digit classifier and the
offline MNIST subset in a child process that cannot see the checkout (its own folder, not the repository)."""
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import gan_lib, gan_lib.data, gan_lib.eval.digits
import gan_lib.hw6.submission, gan_lib.io.files, gan_lib.teach.lessons, gan_lib.trainer.command, gan_lib.recipes
from pathlib import Path
for module in (gan_lib, gan_lib.eval.digits, gan_lib.trainer.command):   # the installed copy, not the checkout
    assert "{root}" not in module.__file__, module.__file__
images, labels = gan_lib.data.load_mnist_subset()
ds, source = gan_lib.data.load_mnist(root="data", download=False)
clf = gan_lib.eval.digits.load_digit_classifier()
accuracy = (clf(ds.tensors[0][:500]).argmax(1) == ds.tensors[1][:500]).float().mean().item()
print(len(images), len(ds), round(accuracy, 3), source.split(",")[0])
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("setuptools")
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(out)], capture_output=True, text=True, cwd=out, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    return next(out.glob("gan_course_kit-*.whl"))


def test_the_wheel_holds_the_files_lessons_load(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("gan_lib/assets/mnist/mnist-2k.npz", "gan_lib/assets/mnist/digit-classifier.pt",
                 "gan_lib/assets/mnist/README.md", "gan_lib/train.py"):
        assert name in names, f"{name} is not in {wheel.name}: list it in [tool.setuptools.package-data]."


def test_the_wheel_holds_every_module_of_every_subpackage(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "gan_lib").rglob("*.py")
                     if "__pycache__" not in p.parts)
    assert {"gan_lib/eval/digits.py", "gan_lib/hw6/grade.py", "gan_lib/io/files.py", "gan_lib/teach/lessons.py",
            "gan_lib/trainer/__main__.py"} <= set(modules)
    missing = [name for name in modules if name not in names]
    assert not missing, (f"{', '.join(missing)} not in {wheel.name}: each subpackage needs an __init__.py "
                         f"([tool.setuptools.packages.find] includes gan_lib*).")


def test_an_installed_wheel_loads_the_classifier_and_subset_outside_the_checkout(wheel, tmp_path):
    target, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    path = [str(target), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    env = {"PYTHONPATH": ":".join(dict.fromkeys(path)), "PYTHONNOUSERSITE": "1", "HOME": str(tmp_path),
           "PATH": "/usr/bin:/bin"}
    # -S: no site-packages .pth files (an editable install of this checkout would put it back on the path)
    run = subprocess.run([sys.executable, "-S", "-c", CHILD.format(root=ROOT)], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    subset, loaded, accuracy, source = run.stdout.split(maxsplit=3)
    assert (int(subset), int(loaded)) == (2000, 2000) and source.strip() == "offline subset shipped with gan_lib"
    assert float(accuracy) > 0.9, f"the installed classifier labels real digits with accuracy {accuracy}"
