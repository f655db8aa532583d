"""The default JPEG quality keeps 1,000 real faces well below the archive-size warning.

Run as a script to measure the archive at several qualities (the numbers beside ``submission.JPEG_QUALITY``):

    python tests/test_submission_size.py
"""
from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

import pytest

if __name__ == "__main__":                         # as a script: find conftest.py and test_evaluate.py
    sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]
from test_evaluate import FACES, faces  # noqa: E402
from gan_lib.hw6.submission import ARCHIVE_WARN_BYTES, HW6_COUNT, write_submission  # noqa: E402


def real_faces(n: int = HW6_COUNT):
    """The first n shared real faces, (n, 3, 64, 64) in [-1, 1]."""
    if len(list(FACES.glob("*.jpg"))) < n:
        pytest.skip(f"{n} real anime faces are not in {FACES}")
    return faces(0, n)


def test_a_submission_of_real_faces_at_the_default_quality_is_quiet(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                      # any warning fails the test
        report = write_submission(real_faces(), tmp_path / "faces")
    assert report.archive_bytes < ARCHIVE_WARN_BYTES / 2                    # well below, not just below


if __name__ == "__main__":
    images = real_faces()
    for quality in (75, 85, 90, 95):
        with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            size = write_submission(images, Path(folder) / "faces", quality=quality).archive_bytes
        print(f"quality {quality}: {size:,} bytes")
