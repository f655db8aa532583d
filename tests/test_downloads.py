"""Downloads: checksums, .part files and reuse; archive extraction that refuses to write outside its folder."""
import hashlib
import io
import socket
import tarfile
import urllib.request
import warnings
import zipfile

import pytest

from conftest import SHARED_DATA
from gan_lib.io import downloads

PAYLOAD = b"anime faces " * 1000


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "served" / "faces.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path.as_uri(), hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def count_fetches(monkeypatch):
    calls = []
    real = urllib.request.urlopen

    def counting(url, *args, **kwargs):
        calls.append(url)
        return real(url, *args, **kwargs)
    monkeypatch.setattr(urllib.request, "urlopen", counting)
    return calls


def test_sha256_of_matches_hashlib(tmp_path):
    (tmp_path / "f").write_bytes(PAYLOAD)
    assert downloads.sha256_of(tmp_path / "f", chunk=7) == hashlib.sha256(PAYLOAD).hexdigest()


def test_download_streams_checks_and_renames(tmp_path, source):
    url, digest = source
    dest = downloads.download(url, tmp_path / "out" / "faces.bin", sha256=digest)
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "out" / "faces.bin.part").exists()


def test_checksum_mismatch_deletes_the_part_file_and_says_so(tmp_path, source):
    url, _ = source
    dest = tmp_path / "faces.bin"
    with pytest.raises(ValueError, match="sha256 .* not the expected 000000000000"):
        downloads.download(url, dest, sha256="0" * 64)
    assert not dest.exists() and not (tmp_path / "faces.bin.part").exists()


@pytest.mark.parametrize("existing, right_sha, fetched", [
    (PAYLOAD, True, 0),            # complete file with the right checksum: reused
    (b"stale", True, 1),           # wrong checksum: fetched again
    (b"no checksum asked", False, 0),  # no checksum given: a finished file (renamed from .part) is trusted
])
def test_existing_file_is_reused_only_when_it_checks_out(tmp_path, source, count_fetches, existing, right_sha,
                                                         fetched):
    url, digest = source
    dest = tmp_path / "faces.bin"
    dest.write_bytes(existing)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        downloads.download(url, dest, sha256=digest if right_sha else None)
    assert len(count_fetches) == fetched
    assert [str(w.message) for w in caught] == ([f"the saved {dest} is damaged or out of date (not the expected "
                                                 f"sha256): downloading it again."] if fetched else [])
    assert dest.read_bytes() == (PAYLOAD if fetched or existing == PAYLOAD else existing)


def test_leftover_part_file_is_never_taken_for_a_finished_download(tmp_path, source, count_fetches):
    url, _ = source
    (tmp_path / "faces.bin.part").write_bytes(PAYLOAD[:100])  # an interrupted earlier run
    dest = downloads.download(url, tmp_path / "faces.bin")
    assert len(count_fetches) == 1 and dest.read_bytes() == PAYLOAD


def test_network_check_is_quick_and_truthful():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert downloads.network_reachable("127.0.0.1", port, timeout=2)
    assert not downloads.network_reachable("127.0.0.1", port, timeout=2)  # closed now: refused at once


def test_cascade_checksum_matches_the_shared_copy():
    cascade = SHARED_DATA / "lbpcascade_animeface.xml"
    if not cascade.is_file():
        pytest.skip("../shared/data/lbpcascade_animeface.xml is not here")
    assert downloads.sha256_of(cascade) == downloads.ANIME_CASCADE_SHA256


# ---- archives -------------------------------------------------------------------------------------------

def _tar(path, members):
    """members: (name, kind, data_or_link) with kind 'file', 'sym' or 'hard'."""
    with tarfile.open(path, "w:gz") as tf:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                tf.addfile(info, io.BytesIO(value))
            else:
                info.type, info.linkname = (tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE), value
                tf.addfile(info)
    return path


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, kind, value in members:
            info = zipfile.ZipInfo(name)
            if kind == "sym":
                info.external_attr = (0o120777 << 16)  # a Unix symlink, as `zip -y` writes it
                value = value.encode()
            zf.writestr(info, value)
    return path


GOOD = ("faces/1.jpg", "file", b"jpeg bytes")
EVIL = {
    "dotdot": ("../evil.txt", "file", b"x"),
    "nested-dotdot": ("faces/../../evil.txt", "file", b"x"),
    "absolute": ("/tmp/evil-from-archive.txt", "file", b"x"),
    "escaping-symlink": ("faces/link", "sym", "../../outside"),
    "absolute-symlink": ("faces/etc", "sym", "/etc"),
}


@pytest.mark.parametrize("fmt", ["tar", "zip"])
@pytest.mark.parametrize("case", list(EVIL), ids=list(EVIL))
def test_dangerous_archives_are_refused_before_anything_is_written(tmp_path, fmt, case):
    build = _tar if fmt == "tar" else _zip
    archive = build(tmp_path / f"evil.{'tar.gz' if fmt == 'tar' else 'zip'}", [GOOD, EVIL[case]])
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ValueError, match="refusing to extract"):
        downloads.safe_extract(archive, tmp_path / "target")
    assert list((tmp_path / "target").iterdir()) == []  # not even the good member
    assert sorted(p.name for p in tmp_path.iterdir()) == before + ["target"]
    assert not (tmp_path.parent / "evil.txt").exists()


def test_escaping_hard_link_in_a_tar_is_refused(tmp_path):
    archive = _tar(tmp_path / "hard.tar.gz", [GOOD, ("faces/passwd", "hard", "../../etc/passwd")])
    with pytest.raises(ValueError, match="points outside"):
        downloads.safe_extract(archive, tmp_path / "target")


@pytest.mark.parametrize("fmt", ["tar", "zip"])
def test_good_archive_extracts_with_its_inner_links(tmp_path, fmt):
    members = [GOOD, ("faces/more/2.jpg", "file", b"more"), ("faces/same", "sym", "1.jpg")]
    archive = (_tar if fmt == "tar" else _zip)(tmp_path / f"good.{fmt}", members)
    target = downloads.safe_extract(archive, tmp_path / "out")
    assert (target / "faces" / "1.jpg").read_bytes() == b"jpeg bytes"
    assert (target / "faces" / "more" / "2.jpg").read_bytes() == b"more"
    assert (target / "faces" / "same").exists()


def test_a_file_that_is_no_archive_is_a_clear_error(tmp_path):
    (tmp_path / "faces.zip").write_text("<html>quota exceeded</html>")
    with pytest.raises(ValueError, match="neither a zip nor a tar"):
        downloads.safe_extract(tmp_path / "faces.zip", tmp_path / "out")
