"""Face folders: every odd file is either converted, skipped with a count, or refused with a clear error."""
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from conftest import SHARED_DATA
from gan_lib import data
from gan_lib.io import downloads
from gan_lib.data import load_faces
from gan_lib.io import image_files
from gan_lib.io.image_files import FaceFolder, copy_to_local
from gan_lib.io.synthetic_faces import cartoon_faces, write_cartoon_faces


def _faces(folder, n=2, ext="png"):
    return write_cartoon_faces(folder, n, size=16, seed=1, ext=ext)


def _load(folder, **kwargs):
    """FaceFolder plus the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = FaceFolder(folder, **kwargs)
    return ds, [str(w.message) for w in caught]


def _truncated_jpeg(path):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, "JPEG")
    path.write_bytes(path.read_bytes()[:400])


# ---- files that must be skipped with a count and one warning ------------------------------------------
SKIPPED = {
    "zero-byte": (lambda d: (d / "empty.jpg").write_bytes(b""), "empty file"),
    "text file": (lambda d: (d / "notes.txt").write_text("not a face"), "not an image"),
    "jpg that is html": (lambda d: (d / "face.jpg").write_text("<html>quota</html>"), "not an image"),
    "truncated jpeg": (lambda d: _truncated_jpeg(d / "cut.jpg"), "corrupt or truncated"),
}


@pytest.mark.parametrize("case", list(SKIPPED), ids=list(SKIPPED))
def test_bad_files_are_skipped_counted_and_named_once(tmp_path, case):
    make, reason = SKIPPED[case]
    _faces(tmp_path)
    make(tmp_path)
    ds, caught = _load(tmp_path)
    assert len(ds) == 2 and len(ds.skipped) == 1 and reason in ds.skipped[0][1]
    assert len(caught) == 1 and "skipped 1 of 3 files" in caught[0] and ds.skipped[0][0].name in caught[0]
    assert "1 files skipped" in ds.source


def _deny(monkeypatch, module, name, path):
    """Root (or Windows) reads anything: make ``module.name(path)`` raise the PermissionError a student would get."""
    real = getattr(module, name)

    def denied(p, *args, **kwargs):
        if str(p) == str(path):
            raise PermissionError(13, "Permission denied", str(p))
        return real(p, *args, **kwargs)
    monkeypatch.setattr(module, name, denied)


def test_unreadable_file_is_skipped(tmp_path, monkeypatch):
    bad = _faces(tmp_path, 3)[1]
    if os.name == "posix" and os.geteuid() != 0:
        bad.chmod(0)
    else:
        _deny(monkeypatch, Image, "open", bad)
    try:
        ds, caught = _load(tmp_path)
    finally:
        bad.chmod(0o644)
    assert len(ds) == 2 and ds.skipped == [(bad, "cannot be read (permission denied)")] and len(caught) == 1


def test_unlistable_subfolder_is_counted(tmp_path, monkeypatch):
    _faces(tmp_path, 2)
    locked = tmp_path / "locked"
    _faces(locked, 2)
    if os.name == "posix" and os.geteuid() != 0:
        locked.chmod(0)
    else:
        _deny(monkeypatch, os, "scandir", locked)  # what os.walk lists folders with
    try:
        ds, caught = _load(tmp_path)
    finally:
        locked.chmod(0o755)
    assert len(ds) == 2 and ds.skipped == [(locked, "folder cannot be read (permission denied)")] and caught


# ---- odd but valid images: converted to RGB, cropped, resized, in [-1, 1] --------------------------------
def _save(mode, size, value, name="img.png", **kw):
    def make(d):
        im = Image.new(mode, size, value)
        if mode == "P":
            im.putpalette([0, 0, 255] + [0] * 765)
        im.save(d / name, **kw)
    return make


CONVERTED = {  # case: (make, expected RGB in [-1, 1] at the centre pixel)
    "rgba fully transparent -> white": (_save("RGBA", (20, 20), (255, 0, 0, 0)), (1, 1, 1)),
    "rgba opaque": (_save("RGBA", (20, 20), (255, 0, 0, 255)), (1, -1, -1)),
    "palette": (_save("P", (20, 20), 0), (-1, -1, 1)),
    "palette with transparency": (_save("P", (20, 20), 0, transparency=0), (1, 1, 1)),
    "greyscale": (_save("L", (20, 20), 255), (1, 1, 1)),
    "16-bit grey": (_save("I;16", (20, 20), 65535), (1, 1, 1)),
    "16-bit grey, dark": (_save("I;16", (20, 20), 257), (2 / 255 - 1,) * 3),
    "32-bit grey tiff": (_save("I", (20, 20), 65535, name="img.tif"), (1, 1, 1)),
    "1x1": (_save("RGB", (1, 1), (0, 255, 0)), (-1, 1, -1)),
    "png named .txt": (_save("RGB", (20, 20), (0, 255, 0), name="face.txt", format="PNG"), (-1, 1, -1)),
    "jpeg named .png": (_save("RGB", (20, 20), (255, 255, 255), name="face.png", format="JPEG"), (1, 1, 1)),
    "grey jpeg": (_save("L", (30, 20), 0, name="g.jpg"), (-1, -1, -1)),
}


@pytest.mark.parametrize("size", [64, 96])
@pytest.mark.parametrize("case", list(CONVERTED), ids=list(CONVERTED))
def test_odd_images_become_rgb_in_unit_range(tmp_path, case, size):
    make, rgb = CONVERTED[case]
    make(tmp_path)
    ds, caught = _load(tmp_path, size=size)
    x = ds[0]
    assert len(ds) == 1 and not caught and x.shape == (3, size, size) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert torch.allclose(x[:, size // 2, size // 2], torch.tensor(rgb, dtype=torch.float32), atol=0.04)


def test_large_jpeg_is_centre_cropped_and_reduced(tmp_path):
    big = np.zeros((3000, 4000, 3), dtype=np.uint8)  # (H, W, 3): red side bands, a green centre
    big[:, :500, 0] = big[:, 3500:, 0] = 255
    big[:, 500:3500, 1] = 255
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=90)
    ds, _ = _load(tmp_path, size=64)
    x = ds.images_uint8[0].float()  # (3, 64, 64)
    assert x[0].max() < 40 and x[1].mean() > 240  # the red bands were cropped away


@pytest.mark.parametrize("cache", [True, False])
def test_nested_and_flat_folders_both_work(tmp_path, cache):
    _faces(tmp_path / "a" / "b", 2)
    _faces(tmp_path, 1)
    ds, caught = _load(tmp_path, cache=cache, size=32)
    assert len(ds) == 3 and not caught
    assert torch.stack([ds[i] for i in range(3)]).shape == (3, 3, 32, 32)


def test_limit_keeps_the_first_files_in_sorted_order(tmp_path):
    paths = _faces(tmp_path, 5)
    ds, _ = _load(tmp_path, limit=3, size=16)
    assert ds.paths == paths[:3]
    assert torch.equal(ds.images_uint8, cartoon_faces(3, 16, seed=1))  # PNG is lossless


# ---- folders that must be refused with a clear error -----------------------------------------------------
REFUSED = {
    "missing folder": (lambda d: d / "nope", FileNotFoundError, "does not exist"),
    "empty folder": (lambda d: d, FileNotFoundError, r"no readable image in .*looked for every file PIL"),
    "only non-images": (lambda d: [(d / f"{i}.jpg").write_text("x") for i in range(3)] and d,
                        FileNotFoundError, r"3 files, 3 skipped"),
    "only an archive": (lambda d: (d / "faces.zip").write_bytes(b"PK") and d, FileNotFoundError,
                        "it holds faces.zip: extract it first"),
    "one empty subfolder": (lambda d: (d / "faces").mkdir() or d, FileNotFoundError,
                            "its only subfolder faces/ was searched too"),
}


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_unusable_folders_are_a_clear_error_naming_the_folder(tmp_path, case):
    make, error, message = REFUSED[case]
    folder = make(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=message) as info:
            FaceFolder(folder)
    assert str(folder) in str(info.value)


# ---- cache on / off --------------------------------------------------------------------------------------
def test_cached_epochs_decode_nothing(tmp_path, monkeypatch):
    _faces(tmp_path, 4)
    ds, _ = _load(tmp_path, size=16, workers=2)
    assert ds.images_uint8.shape == (4, 3, 16, 16) and ds.images_uint8.dtype == torch.uint8
    monkeypatch.setattr(image_files, "_decode", lambda *a: pytest.fail("decoded during an epoch"))
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert torch.equal(batch, ds.images_uint8.float() / 127.5 - 1)


def test_uncached_file_broken_after_construction_does_not_stop_the_epoch(tmp_path):
    paths = _faces(tmp_path, 4, ext="jpg")
    ds, _ = _load(tmp_path, size=16, cache=False)
    assert ds.images_uint8 is None
    _truncated_jpeg(paths[1])
    paths[2].write_bytes(b"")
    with pytest.warns(UserWarning, match="can no longer be decoded"):
        seen = torch.cat(list(DataLoader(ds, batch_size=2)))
    assert seen.shape == (4, 3, 16, 16) and seen.min() >= -1 and seen.max() <= 1
    assert ds.skipped_during_epoch == 2 and torch.equal(seen[1], seen[3])  # both replaced by face 3


def test_real_faces_when_present():
    folder = SHARED_DATA / "anime-faces-64"
    if not folder.is_dir():
        pytest.skip("../shared/data/anime-faces-64 is not here")
    ds, source = load_faces(folder, size=64, limit=200, allow_download=False)
    x = torch.stack([ds[i] for i in range(len(ds))])
    assert x.shape == (200, 3, 64, 64) and x.min() >= -1 and x.max() <= 1 and x.std() > 0.3
    assert source.startswith("your folder: 200 images from")


# ---- load_faces: the order of sources --------------------------------------------------------------------
@pytest.fixture
def no_known_folders(monkeypatch):
    """Pretend this machine has no shared or Kaggle face folder, so the download/fallback order shows."""
    monkeypatch.setattr(data, "KNOWN_FACE_FOLDERS", ())


def test_a_known_folder_is_used_before_any_download(tmp_path, monkeypatch):
    write_cartoon_faces(tmp_path / "faces", 5, size=16)
    monkeypatch.setattr(data, "KNOWN_FACE_FOLDERS", (tmp_path / "missing", tmp_path / "faces"))
    monkeypatch.setattr(downloads, "network_reachable", lambda *a, **k: pytest.fail("must not try the network"))
    ds, source = load_faces(size=16)
    assert len(ds) == 5 and "found on this machine" in source and "faces" in source


def test_unusable_path_is_raised_not_replaced(tmp_path):
    with pytest.raises(FileNotFoundError, match="no readable image"):
        load_faces(tmp_path, allow_download=True)


@pytest.mark.parametrize("allow, reachable, why", [(False, True, "allow_download=False"),
                                                 (True, False, "no network")])
def test_offline_fallback_is_synthetic_and_says_why(no_known_folders, monkeypatch, allow, reachable, why):
    monkeypatch.setattr(downloads, "network_reachable", lambda *a, **k: reachable)
    ds, source = load_faces(size=32, limit=10, allow_download=allow)
    assert len(ds) == 10 and ds[0].shape == (3, 32, 32)
    assert source.startswith("offline fallback: 10 synthetic cartoon faces") and why in source


def test_hw6_archive_is_used_when_kaggle_is_missing(no_known_folders, tmp_path, monkeypatch):
    import sys
    _faces(tmp_path / "zipme" / "faces", 3, ext="jpg")
    archive = shutil.make_archive(str(tmp_path / "faces"), "zip", tmp_path / "zipme")
    monkeypatch.setattr(downloads, "network_reachable", lambda *a, **k: True)
    monkeypatch.setattr(downloads, "HW6_FACES_URL", Path(archive).as_uri())
    monkeypatch.setitem(sys.modules, "kagglehub", None)  # import fails: not installed
    monkeypatch.setitem(sys.modules, "gdown", None)
    ds, source = load_faces(size=16, download_to=tmp_path / "data")
    assert len(ds) == 3 and source.startswith("NTU HW6 faces: 3 images from")
    assert "Kaggle splcher/animefacedataset unavailable: ModuleNotFoundError" in source
    assert (tmp_path / "data" / "hw6-faces" / "faces").is_dir()
    assert not (tmp_path / "data" / "hw6-faces.part").exists()


def test_copy_to_local_copies_once_and_repairs_what_differs(tmp_path, capsys):
    _faces(tmp_path / "drive" / "sub", 3)
    dst = copy_to_local(tmp_path / "drive", tmp_path / "local")
    assert sorted(p.name for p in dst.rglob("*.png")) == ["face_00000.png", "face_00001.png", "face_00002.png"]
    copy_to_local(tmp_path / "drive", dst)
    assert "copied 0 of the 3 files" in capsys.readouterr().out.splitlines()[-1]  # a finished copy: nothing again
    marker = dst / "sub" / "face_00000.png"
    marker.write_bytes(b"changed")
    copy_to_local(tmp_path / "drive", dst)  # another size: copied again
    assert marker.read_bytes() == (tmp_path / "drive" / "sub" / "face_00000.png").read_bytes()
    with pytest.raises(FileNotFoundError, match="mount Drive first"):
        copy_to_local(tmp_path / "no-drive", dst)


# ---- synthetic faces -------------------------------------------------------------------------------------
def test_cartoon_faces_are_deterministic_and_varied():
    a, b = cartoon_faces(40, 64, seed=3), cartoon_faces(40, 64, seed=3)
    assert a.shape == (40, 3, 64, 64) and a.dtype == torch.uint8 and torch.equal(a, b)
    assert torch.equal(cartoon_faces(5, 64, seed=3), a[:5])  # face i depends on (seed, i) only
    assert (a.float() - cartoon_faces(40, 64, seed=4).float()).abs().mean() > 20
    assert a.float().mean(dim=(2, 3)).std(dim=0).min() > 15  # colours vary from face to face
    assert (a.float().std(dim=(1, 2, 3)) > 30).all()         # each face has contrast (not a flat square)


def test_the_decoding_bar_reaches_its_total(tmp_path, capsys):
    """The bar counts the last image too (zip() used to stop before tqdm saw its end: 4/5, drawn as failed)."""
    _faces(tmp_path, n=5)
    FaceFolder(tmp_path, size=8, cache=True)
    assert "5/5" in capsys.readouterr().err
