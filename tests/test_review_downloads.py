"""Review fixes in gan_lib.io.downloads: link chains in archives, truncated downloads, HTTP errors."""
import io
import tarfile
import zipfile

import pytest

from gan_lib.io import downloads


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


# ---- download(): short bodies, damaged archives, HTTP errors ----------------------------------------------
@pytest.fixture
def server():
    """A loopback HTTP server: ``routes[path] = (status, announced length or None, body)``; yields (base, routes)."""
    import http.server
    import threading
    routes = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status, length, body = routes.get(self.path, (404, None, b"not found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            self.wfile.write(body)  # HTTP/1.0: the connection closes after the body, however short

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", routes
    httpd.shutdown()
    httpd.server_close()


def _zip_bytes(n_files=3):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for i in range(n_files):
            zf.writestr(f"faces/{i}.jpg", bytes(range(256)) * 200)
    return buffer.getvalue()


def test_a_body_shorter_than_its_content_length_is_refused(tmp_path, server):
    base, routes = server
    routes["/faces.bin"] = (200, 300_000, b"x" * 100_000)
    dest = tmp_path / "faces.bin"
    with pytest.raises(ConnectionError, match=r"stopped after 100,000 of the 300,000 bytes the server announced"):
        downloads.download(f"{base}/faces.bin", dest)
    assert not dest.exists() and not (tmp_path / "faces.bin.part").exists()


def test_a_truncated_archive_is_not_moved_into_place(tmp_path, server):
    base, routes = server
    whole = _zip_bytes()
    routes["/hw6-faces.zip"] = (200, None, whole[:len(whole) // 2])  # honest length, half an archive
    dest = tmp_path / "hw6-faces.zip"
    with pytest.raises(ValueError, match="is not a whole archive .*: try again, or get it by hand"):
        downloads.download(f"{base}/hw6-faces.zip", dest)
    assert not dest.exists() and not (tmp_path / "hw6-faces.zip.part").exists()
    routes["/hw6-faces.zip"] = (200, None, whole)
    assert downloads.download(f"{base}/hw6-faces.zip", dest).read_bytes() == whole


@pytest.mark.parametrize("name", ["hw6-faces.zip", "faces.tar.gz"])
def test_a_damaged_saved_archive_is_fetched_again_with_a_warning(tmp_path, server, name):
    base, routes = server
    if name.endswith(".zip"):
        whole = _zip_bytes()
    else:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
            info = tarfile.TarInfo("faces/0.jpg")
            info.size = 50_000
            tf.addfile(info, io.BytesIO(bytes(range(250)) * 200))
        whole = buffer.getvalue()
    routes[f"/{name}"] = (200, None, whole)
    dest = tmp_path / name
    dest.write_bytes(whole[:len(whole) // 2])                        # what an earlier, cut download left
    with pytest.warns(UserWarning, match=f"the saved {dest} is damaged .*: downloading it again"):
        downloads.download(f"{base}/{name}", dest)
    assert dest.read_bytes() == whole
    assert downloads.archive_problem(dest) is None


def test_a_whole_saved_archive_is_reused_without_fetching(tmp_path, server):
    base, routes = server
    dest = tmp_path / "hw6-faces.zip"
    dest.write_bytes(_zip_bytes())
    routes["/hw6-faces.zip"] = (500, None, b"")                     # any fetch would fail
    assert downloads.download(f"{base}/hw6-faces.zip", dest) == dest


def test_http_404_is_one_sentence_naming_the_url_and_the_fix(tmp_path, server):
    base, _ = server
    with pytest.raises(ConnectionError) as info:
        downloads.download(f"{base}/missing.zip", tmp_path / "missing.zip")
    assert str(info.value) == (f"the server answered HTTP 404 (Not Found) for {base}/missing.zip: check the "
                               f"address, or download the file by hand and pass its path.")
    assert info.value.__cause__ is None and not list(tmp_path.iterdir())


def test_no_connection_is_one_sentence_too(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]                                    # closed once the block ends: refused
    with pytest.raises(ConnectionError, match=rf"cannot fetch http://127.0.0.1:{port}/x.zip \(.*\): check the "
                                              r"network, or check the address"):
        downloads.download(f"http://127.0.0.1:{port}/x.zip", tmp_path / "x.zip", timeout=5)
