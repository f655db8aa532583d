"""Review fixes in reading faces (gan_lib.data, gan_lib.io.image_files): copy_to_local checks files, a file is
not a folder, too-large images, reasons when every file fails, and a damaged HW6 zip that is fetched again."""
import os
import shutil
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from gan_lib import data as gan_data
from gan_lib.io import downloads
from gan_lib.data import load_faces
from gan_lib.io.image_files import FaceFolder, copy_to_local
from gan_lib.io.synthetic_faces import write_cartoon_faces


def _faces(folder, n=3, ext="png"):
    return write_cartoon_faces(folder, n, size=16, seed=1, ext=ext)


# ---- copy_to_local ---------------------------------------------------------------------------------------
def test_copy_to_local_is_not_fooled_by_as_many_unrelated_files(tmp_path, capsys):
    src = tmp_path / "drive"
    _faces(src, 5)
    for i in range(5):  # as many files as src, none of them a face
        (tmp_path / "local" / f"notes{i}.txt").parent.mkdir(exist_ok=True)
        (tmp_path / "local" / f"notes{i}.txt").write_text("mine")
    dst = copy_to_local(src, tmp_path / "local")
    for face in src.iterdir():
        assert (dst / face.name).read_bytes() == face.read_bytes()
    assert all((dst / f"notes{i}.txt").read_text() == "mine" for i in range(5))  # nothing already saved is lost
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"copy_to_local: copied 5 of the 5 files of {src} to {dst} (5 missing there, 0 different); the other 0 "
        f"were already there; 5 files found only in {dst} were kept.")


def test_copy_to_local_recopies_a_file_of_the_same_size_but_another_time(tmp_path, capsys):
    src = tmp_path / "drive"
    first = _faces(src, 2)[0]
    dst = copy_to_local(src, tmp_path / "local")
    stale = dst / first.name
    stale.write_bytes(bytes(len(first.read_bytes())))                 # same size, other bytes, a newer time
    os.utime(stale, (first.stat().st_atime, first.stat().st_mtime + 60))
    copy_to_local(src, dst)
    assert stale.read_bytes() == first.read_bytes()
    assert "copied 1 of the 2 files of" in (out := capsys.readouterr().out) and "(0 missing there, 1 different)" in out


# ---- a file is not a folder ------------------------------------------------------------------------------
@pytest.mark.parametrize("name, advice", [
    ("faces.zip", "it is an archive, so extract it first (e.g. gan_lib.io.downloads.safe_extract) and pass the "
                  "folder it makes."),
    ("face.png", "pass the folder that holds the face images."),
])
def test_a_file_given_as_the_folder_is_called_a_file(tmp_path, name, advice):
    src = tmp_path / "src"
    _faces(src, 1)
    if name.endswith(".zip"):
        shutil.make_archive(str(tmp_path / "faces"), "zip", src)
    else:
        shutil.copy(next(src.iterdir()), tmp_path / name)
    for load in (FaceFolder, load_faces):
        with pytest.raises(NotADirectoryError) as info:
            load(tmp_path / name)
        assert str(info.value) == f"{tmp_path / name} is a file, not a folder: {advice}"


# ---- images over Pillow's size limit ---------------------------------------------------------------------
@pytest.mark.parametrize("over", ["error", "warning"])  # Pillow raises above twice the limit, warns above it
@pytest.mark.parametrize("cache", [True, False])
def test_an_image_over_pillows_limit_is_named_with_its_size_not_called_corrupt(tmp_path, monkeypatch, over, cache):
    _faces(tmp_path, 2)
    Image.new("RGB", (300, 200), (255, 0, 0)).save(tmp_path / "huge.png")  # 60,000 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000 if over == "error" else 40_000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = FaceFolder(tmp_path, size=16, cache=cache)
    limit = Image.MAX_IMAGE_PIXELS
    assert len(ds) == 2 and ds.skipped == [(tmp_path / "huge.png", (
        f"too large: 300 x 200 pixels, over Pillow's safety limit of {limit:,} pixels (PIL.Image.MAX_IMAGE_PIXELS); "
        f"resize it, or raise that limit if you trust the file"))]
    messages = [str(w.message) for w in caught if not issubclass(w.category, ResourceWarning)]   # another test's
    assert len(messages) == 1 and "huge.png (too large: 300 x 200 pixels" in messages[0]  # ours, not Pillow's


# ---- every file bad: the reasons are given ---------------------------------------------------------------
def test_when_every_file_fails_the_error_counts_the_reasons_and_shows_the_first(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "b.jpg").write_text("<html>quota exceeded</html>")
    (tmp_path / "c.png").write_text("not a png either")
    with pytest.raises(FileNotFoundError) as info:
        FaceFolder(tmp_path)
    assert str(info.value).startswith(f"no readable image in {tmp_path} (3 files, 3 skipped: 2 not an image, "
                                      f"1 empty file; the first, a.jpg: empty file (0 bytes); looked for every file")


# ---- a damaged HW6 zip left by a cut download is fetched again -------------------------------------------
def test_a_truncated_hw6_zip_is_fetched_again_not_reused(tmp_path, monkeypatch):
    _faces(tmp_path / "zipme" / "faces", 3, ext="jpg")
    archive = Path(shutil.make_archive(str(tmp_path / "faces"), "zip", tmp_path / "zipme"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "hw6-faces.zip").write_bytes(archive.read_bytes()[:len(archive.read_bytes()) // 2])
    assert not zipfile.is_zipfile(data / "hw6-faces.zip")
    monkeypatch.setattr(gan_data, "KNOWN_FACE_FOLDERS", ())
    monkeypatch.setattr(downloads, "network_reachable", lambda *a, **k: True)
    monkeypatch.setattr(downloads, "HW6_FACES_URL", archive.as_uri())
    monkeypatch.setitem(sys.modules, "kagglehub", None)
    monkeypatch.setitem(sys.modules, "gdown", None)
    with pytest.warns(UserWarning, match="hw6-faces.zip is damaged or out of date .*downloading it again"):
        ds, source = load_faces(size=16, download_to=data)
    assert len(ds) == 3 and source.startswith("NTU HW6 faces: 3 images from")
    assert (data / "hw6-faces.zip").read_bytes() == archive.read_bytes()
