"""The HW6 submission: writing a flat .tgz of 1.jpg … n.jpg and catching every malformed one."""
from __future__ import annotations

import io
import json
import tarfile

import pytest
import torch
from PIL import Image
from torch import nn

from gan_lib.hw6.submission import generate, validate_submission, write_submission

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
    monkeypatch.setattr("gan_lib.hw6.submission.ARCHIVE_WARN_BYTES", 100)
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


# ---------------------------------------------------------------- archives too large, damaged or not gzip

def test_more_entries_than_the_limit_are_refused_before_reading_them(tmp_path):
    bomb = make_tgz(tmp_path / "bomb.tgz", {f"x{i}": b"" for i in range(2_001)})
    assert validate_submission(bomb, n=N, raise_on_error=False) == [
        "the archive holds more than 2,000 entries: a submission is 5 images, so pack only 1.jpg … 5.jpg."]
    assert validate_submission(make_tgz(tmp_path / "ok.tgz", with_({f"x{i}": b"" for i in range(1_990)})), n=N,
                               raise_on_error=False)[0].startswith("1990 files are not .jpg images")


def zeros_tgz(path, size: int, name: str = "1.jpg"):
    """A .tgz whose one member's header says ``size`` bytes of zeros: tiny on disk."""
    class Zeros(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, b):
            b[:] = bytes(len(b))
            return len(b)
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = size
        tar.addfile(info, io.BufferedReader(Zeros()))
    return path


def test_a_member_above_the_size_limit_is_refused_from_its_header(tmp_path):
    import tracemalloc
    bomb = zeros_tgz(tmp_path / "bomb.tgz", 30_000_000)
    assert bomb.stat().st_size < 100_000
    tracemalloc.start()
    problems = validate_submission(bomb, n=N, raise_on_error=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert problems == ["1.jpg is 30.0 MB, above the 1 MB allowed for one image (a 64x64 JPEG is a few KB): remove "
                        "it and pack only 1.jpg … 5.jpg."]
    assert peak < 5_000_000                                                 # the 30 MB were never read


def test_all_members_together_above_the_total_limit_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("gan_lib.hw6.submission.MAX_TOTAL_BYTES", 2 * len(jpeg()))
    assert validate_submission(make_tgz(tmp_path / "ok.tgz", good()), n=N, raise_on_error=False) == [
        f"the archive's files add up to more than {2 * len(jpeg()) / 1e6:g} MB (1,000 faces make about 2.2 MB): pack "
        f"only 1.jpg … 5.jpg."]


def test_a_huge_pax_header_is_refused_before_tarfile_reads_it(tmp_path):
    path = tmp_path / "pax.tgz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("1.jpg")
        info.pax_headers = {"comment": "x" * 3_000_000}
        data = jpeg()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    problem, = validate_submission(path, n=N, raise_on_error=False)
    assert problem.startswith("the archive holds a tar header record of 3,000,") and problem.endswith(
        "above the 1 MB allowed for one member: pack only the images.")


def test_a_folder_file_above_the_size_limit_is_refused_before_reading_it(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for name, data in good().items():
        (folder / name).write_bytes(data)
    with open(folder / "5.jpg", "wb") as f:
        f.truncate(30_000_000)                                             # sparse: nothing on disk
    assert validate_submission(folder, n=N, raise_on_error=False) == [
        "5.jpg is 30.0 MB, above the 1 MB allowed for one image (a 64x64 JPEG is a few KB): remove it and pack only "
        "1.jpg … 5.jpg."]


def noisy_tgz(path, n: int = 20) -> bytes:
    """A .tgz of n noise JPEGs (incompressible, so the middle of the gzip stream is image data); its bytes."""
    g = torch.Generator().manual_seed(0)
    members = {}
    for i in range(1, n + 1):
        out = io.BytesIO()
        Image.fromarray(torch.randint(0, 256, (64, 64, 3), dtype=torch.uint8, generator=g).numpy()).save(out, "JPEG")
        members[f"{i}.jpg"] = out.getvalue()
    return make_tgz(path, members).read_bytes()


@pytest.mark.parametrize("where", [0.25, 0.4, 0.6])
def test_a_gzip_damaged_mid_stream_is_reported_as_damaged(tmp_path, where):
    data = bytearray(noisy_tgz(tmp_path / "ok.tgz"))
    assert validate_submission(tmp_path / "ok.tgz", n=20) == []
    at = int(len(data) * where)
    data[at:at + 16] = bytes(16)
    (tmp_path / "bad.tgz").write_bytes(data)
    problem, = validate_submission(tmp_path / "bad.tgz", n=20, raise_on_error=False)
    assert problem.startswith(f"{tmp_path / 'bad.tgz'} is a damaged .tgz (") and problem.endswith(
        "pack it again with `tar -czf bad.tgz *.jpg` and check it with `tar -tzf bad.tgz`."), problem
    (tmp_path / "cut.tgz").write_bytes(data[:at])
    assert validate_submission(tmp_path / "cut.tgz", n=20, raise_on_error=False)[0].startswith(
        f"{tmp_path / 'cut.tgz'} is a damaged .tgz (")


@pytest.mark.parametrize("mode, kind", [("w", "an uncompressed tar"), ("w:bz2", "a bzip2 archive"),
                                        ("w:xz", "an xz archive")])
def test_a_tgz_that_is_not_gzip_is_refused(tmp_path, mode, kind):
    path = tmp_path / "sub.tgz"
    with tarfile.open(path, mode) as tar:
        for name, data in good().items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert validate_submission(path, n=N, raise_on_error=False) == [
        f"{path} is {kind}, not gzip: HW6 wants a gzip-compressed .tgz, so pack it with `tar -czf sub.tgz *.jpg`."]


# ---------------------------------------------------------------- pixels that are not a generator's [-1, 1]

class NaNGenerator(nn.Module):
    """A generator whose training diverged: every weight NaN."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(8, 3 * 64 * 64)
        nn.init.constant_(self.layer.weight, float("nan"))

    def forward(self, z):
        return self.layer(z).tanh().view(-1, 3, 64, 64)                # (B, 3, 64, 64)


def test_a_nan_generator_is_refused_naming_its_checkpoint(tmp_path):
    with pytest.raises(ValueError, match=r"^the generator \(runs/a/last.pt\) gave 20 of 20 images with NaN or "
                                         r"infinite pixels: its training diverged, so sample from an earlier "
                                         r"checkpoint or retrain \(e.g. with a lower learning rate\)\.$"):
        write_submission(NaNGenerator(), tmp_path / "faces", n=20, noise=lambda b: torch.randn(b, 8),
                         source="runs/a/last.pt")
    images = torch.zeros(20, 3, 64, 64)
    images[3, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"^the images gave 1 of 20 images with NaN or infinite pixels"):
        write_submission(images, tmp_path / "faces", n=20)
    assert not (tmp_path / "faces").exists() and not (tmp_path / "faces.tgz").exists()


@pytest.mark.parametrize("kind", ["uint8", "float 0-255"])
def test_images_outside_minus_one_one_are_refused_not_clamped(tmp_path, kind):
    pixels = torch.randint(0, 256, (10, 3, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    images = pixels if kind == "uint8" else pixels.float()
    with pytest.raises(ValueError, match=r"^the images gave pixels in \[0, 255\], outside \[-1, 1\]: scale \[0, 255\] "
                                         r"images to \[-1, 1\] with x / 127.5 - 1 \(a tanh generator's output "
                                         r"already lies in \[-1, 1\]\)\.$"):
        write_submission(images, tmp_path / "faces", n=10)
    assert not (tmp_path / "faces").exists()
    write_submission(pixels.float() / 127.5 - 1 + 5e-4, tmp_path / "faces", n=10)   # float error is let through
