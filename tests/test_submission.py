"""The HW6 submission: writing a flat .tgz of 1.jpg … n.jpg and catching every malformed one."""
from __future__ import annotations

import io
import json
import tarfile

import pytest
import torch
from PIL import Image
from torch import nn

from gan_lib.submission import generate, validate_submission, write_submission

N = 5


def jpeg(size: int = 64, mode: str = "RGB", fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (size, size), (200, 120, 90) if mode == "RGB" else 128).save(out, format=fmt)
    return out.getvalue()


def good() -> dict[str, bytes]:
    return {f"{i}.jpg": jpeg() for i in range(1, N + 1)}


def make_tgz(path, members: dict[str, bytes | None]):
    """A .tgz with these members: bytes make a file, None a folder entry."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def with_(changes: dict, drop: tuple = ()) -> dict:
    members = {k: v for k, v in good().items() if k not in drop}
    members.update(changes)
    return members


CASES = {  # name: (members, the start of each expected problem)
    "wrong count": (with_({}, drop=("5.jpg",)), ["the archive holds 4 .jpg images", "1 expected images are missing"]),
    "misnamed file": (with_({"five.jpg": jpeg()}, drop=("5.jpg",)),
                      ["1 expected images are missing ('5.jpg')", "1 images are misnamed or extra ('five.jpg')"]),
    "extra image": (with_({"6.jpg": jpeg()}), ["the archive holds 6 .jpg images", "1 images are misnamed or extra"]),
    "extra non-jpg": (with_({"notes.txt": b"hi"}), ["1 files are not .jpg images ('notes.txt')"]),
    "32x32 image": (with_({"3.jpg": jpeg(size=32)}), ["1 images are not 64x64 (3.jpg is 32x32)"]),
    "greyscale image": (with_({"2.jpg": jpeg(mode="L")}), ["1 images are not RGB (2.jpg is mode L)"]),
    "corrupt jpg": (with_({"4.jpg": jpeg()[:40]}), ["1 images cannot be read as images (4.jpg"]),
    "png named jpg": (with_({"1.jpg": jpeg(fmt="PNG")}), ["1 images are not JPEG data (1.jpg is PNG)"]),
    "folder inside": (with_({"extra/": None}), ["the archive holds 1 folders ('extra/')"]),
    "nested layout": ({f"images/{k}": v for k, v in good().items()} | {"images": None},
                      ["the archive holds 1 folders", "5 files are not at the archive's root",
                       "the archive holds 0 .jpg images", "5 expected images are missing"]),
}


def test_a_good_submission_passes(tmp_path):
    assert validate_submission(make_tgz(tmp_path / "ok.tgz", good()), n=N) == []
    assert validate_submission(make_tgz(tmp_path / "dots.tgz", {f"./{k}": v for k, v in good().items()}), n=N) == []


@pytest.mark.parametrize("case", CASES)
def test_each_problem_is_reported(tmp_path, case):
    members, expected = CASES[case]
    problems = validate_submission(make_tgz(tmp_path / "bad.tgz", members), n=N, raise_on_error=False)
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected):
        assert problem.startswith(start), (problem, start)


def test_all_problems_raise_together_and_folders_are_checked(tmp_path):
    members = with_({"3.jpg": jpeg(size=32), "2.jpg": jpeg(mode="L")})
    with pytest.raises(ValueError, match=r"not 64x64.*\n- .*not RGB"):
        validate_submission(make_tgz(tmp_path / "bad.tgz", members), n=N)
    folder = tmp_path / "faces"
    (folder / "sub").mkdir(parents=True)
    for name, data in with_({"sub/6.jpg": jpeg()}).items():
        (folder / name).write_bytes(data)
    assert [p.split(" (")[0] for p in validate_submission(folder, n=N, raise_on_error=False)] == [
        "the folder holds 1 folders", "1 files are not at the folder's root"]


def test_unreadable_archive_and_size_warning(tmp_path, monkeypatch):
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"not a tar at all")
    assert validate_submission(junk, n=N, raise_on_error=False)[0].endswith("pack it with `tar -czf junk.tgz *.jpg`.")
    monkeypatch.setattr("gan_lib.submission.ARCHIVE_WARN_BYTES", 100)
    with pytest.warns(UserWarning, match="above"):
        validate_submission(make_tgz(tmp_path / "ok.tgz", good()), n=N)


def tiny_generator(size: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 3 * size * size), nn.Tanh(), nn.Unflatten(1, (3, size, size)))  # (B, 3, s, s)


@pytest.mark.parametrize("size", [64, 96])
def test_write_submission_from_a_generator(tmp_path, size):
    G = tiny_generator(size).train()
    report = write_submission(G, tmp_path / "faces", n=20, noise=lambda b: torch.randn(b, 8), batch_size=8,
                              metrics={"afd": torch.tensor(0.5), "diversity": 0.3})
    assert G.training                                                    # its mode is restored
    assert report.archive == tmp_path / "faces.tgz" and report.n == 20
    with tarfile.open(report.archive) as tar:
        members = tar.getmembers()
        assert sorted(m.name for m in members) == sorted(f"{i}.jpg" for i in range(1, 21))
        assert all(m.isfile() for m in members)
        with Image.open(tar.extractfile("7.jpg")) as im:
            assert (im.size, im.mode, im.format) == ((64, 64), "RGB", "JPEG")
    facts = json.loads(report.metrics_path.read_text())
    assert facts["n"] == 20 and facts["generated_size"] == [size, size]
    assert facts["archive_bytes"] == report.archive_bytes == report.archive.stat().st_size
    assert facts["metrics"] == {"afd": 0.5, "diversity": 0.3}
    once, twice = (generate(G, lambda b: torch.randn(b, 8), 20, batch_size=8) for _ in range(2))
    assert torch.equal(once, twice) and once.shape == (20, 3, size, size)                 # seeded: repeatable


def test_write_submission_from_images_and_its_refusals(tmp_path):
    images = torch.rand(12, 3, 64, 64) * 2 - 1
    with pytest.raises(ValueError, match="at least n=20"):
        write_submission(images, tmp_path / "a", n=20)
    with pytest.raises(ValueError, match="without noise"):
        write_submission(tiny_generator(64), tmp_path / "a", n=3)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_submission(images, folder, n=10)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"] and not (tmp_path / "mine.tgz").exists()
    report = write_submission(images, folder, n=10, overwrite=True)
    assert (folder / "notes.txt").read_text() == "keep me"
    with tarfile.open(report.archive) as tar:
        assert "notes.txt" not in tar.getnames() and len(tar.getnames()) == 10
    with pytest.raises(FileExistsError, match="mine.tgz already exists"):
        write_submission(images, tmp_path / "other", n=10, archive=report.archive)
    report.archive.unlink()
    with pytest.raises(FileExistsError, match="mine.json already exists"):
        write_submission(images, tmp_path / "other", n=10, archive=report.archive)
    assert not (tmp_path / "other").exists()                                  # refused before writing anything
