"""Review fixes in gan_lib.downloads: link chains in archives, truncated downloads, HTTP errors."""
import io
import tarfile
import zipfile

import pytest

from gan_lib import downloads


def _archive(path, members):
    """A .tar or .zip of members (name, link text or None, bytes): a member with link text is a symlink."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as zf:
            for name, link, data in members:
                info = zipfile.ZipInfo(name)
                if link is not None:
                    info.external_attr, data = 0o120777 << 16, link.encode()  # a Unix symlink, as `zip -y` writes
                zf.writestr(info, data)
        return path
    with tarfile.open(path, "w") as tf:
        for name, link, data in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


CHAINS = {  # each is safe member by member before the links exist, and escapes once earlier members exist
    "dd -> ., esc -> dd/..": [("dd", ".", b""), ("esc", "dd/..", b""), ("esc/evil.txt", None, b"x")],
    "a file through a link that escapes later": [("up", "m/..", b""), ("m", ".", b""),
                                                 ("up/evil.txt", None, b"x")],
    "nested: faces/d -> .., faces/e -> d/..": [("faces/1.jpg", None, b"jpeg"), ("faces/d", "..", b""),
                                              ("faces/e", "d/..", b""), ("faces/e/evil.txt", None, b"x")],
}


@pytest.mark.parametrize("suffix", [".tar", ".zip"])
@pytest.mark.parametrize("case", list(CHAINS), ids=list(CHAINS))
def test_a_chain_of_links_that_leaves_the_target_is_refused(tmp_path, case, suffix):
    archive = _archive(tmp_path / f"chain{suffix}", CHAINS[case])
    with pytest.raises(ValueError, match="refusing to extract"):
        downloads.safe_extract(archive, tmp_path / "target")
    assert list((tmp_path / "target").iterdir()) == []          # nothing written, not even the good members
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([archive.name, "target"])
    assert not (tmp_path.parent / "evil.txt").exists()


def test_a_loop_of_links_is_refused_with_a_sentence(tmp_path):
    archive = _archive(tmp_path / "loop.tar", [("a", "b", b""), ("b", "a", b""), ("a/x.txt", None, b"x")])
    with pytest.raises(ValueError, match="'a/x.txt' lands outside .* refusing to extract it"):
        downloads.safe_extract(archive, tmp_path / "target")


def test_links_that_stay_inside_still_extract(tmp_path):
    members = [("faces/1.jpg", None, b"jpeg"), ("here", ".", b""), ("faces/up", "..", b""),
               ("via", "here/faces/up/faces", b""), ("via/2.jpg", None, b"two")]
    target = downloads.safe_extract(_archive(tmp_path / "ok.tar", members), tmp_path / "out")
    assert (target / "faces" / "2.jpg").read_bytes() == b"two" and (target / "via" / "1.jpg").is_file()


def test_tar_extraction_uses_the_data_filter_whenever_python_has_it(tmp_path, monkeypatch):
    if not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python has no tarfile.data_filter")
    seen = []
    real = tarfile.TarFile.extractall

    def recording(self, *args, **kwargs):
        seen.append(kwargs.get("filter"))
        return real(self, *args, **kwargs)
    monkeypatch.setattr(tarfile.TarFile, "extractall", recording)
    downloads.safe_extract(_archive(tmp_path / "ok.tar", [("faces/1.jpg", None, b"jpeg")]), tmp_path / "out")
    assert seen == ["data"]
