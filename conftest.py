"""Test-wide settings: every notebook runs in smoke mode unless the caller says otherwise.

`python -m pytest` needs no extra flags: pyproject.toml adds nbval's options, this file the environment.
"""
import os
from pathlib import Path

os.environ.setdefault("GAN_LIB_SMOKE", "1")

ROOT = Path(__file__).resolve().parent
SHARED_DATA = ROOT.parent / "shared" / "data"   # offline copies of the real data sets, when present
