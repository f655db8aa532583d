"""The face cascade: a damaged cached copy never shadows a good shared one (gan_lib.io.downloads.cached_or_shared)."""
import hashlib
import urllib.request
import warnings

import pytest

from conftest import SHARED_DATA
from gan_lib.io import downloads
from gan_lib.eval.image_metrics import load_face_cascade

GOOD = b"<opencv_storage>the real cascade</opencv_storage>"
SHA = hashlib.sha256(GOOD).hexdigest()


@pytest.fixture
def offline(monkeypatch):
    """urlopen fails as it does with no network; the URLs it was asked for are listed."""
    asked = []

    def refuse(url, *args, **kwargs):
        asked.append(url)
        raise urllib.error.URLError("no network in this test")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return asked


def test_a_damaged_cached_cascade_gives_way_to_the_good_shared_copy(tmp_path, offline):
    shared = SHARED_DATA / "lbpcascade_animeface.xml"
    if not shared.is_file():
        pytest.skip("../shared/data/lbpcascade_animeface.xml is not here")
    cached = tmp_path / "lbpcascade_animeface.xml"
    cached.write_text("<html>429 Too Many Requests</html>")         # what a rate-limited download left
    with pytest.warns(UserWarning, match=f"the saved {cached} was damaged .*replaced it with the good copy"):
        cascade = load_face_cascade(cache_dir=tmp_path)
    assert not cascade.empty() and cached.read_bytes() == shared.read_bytes() and not offline
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                # repaired: quiet from now on
        assert not load_face_cascade(cache_dir=tmp_path).empty()


def test_a_good_cache_is_used_and_a_missing_one_falls_back_to_shared(tmp_path, offline):
    shared = tmp_path / "shared.xml"
    shared.write_bytes(GOOD)
    cached = tmp_path / "cache" / "c.xml"
    assert downloads.cached_or_shared("http://x/c.xml", cached, SHA, shared) == shared
    assert not cached.exists()                                        # nothing written when nothing is wrong
    cached.parent.mkdir()
    cached.write_bytes(GOOD)
    shared.write_bytes(b"damaged")
    assert downloads.cached_or_shared("http://x/c.xml", cached, SHA, shared) == cached and not offline


def test_a_damaged_shared_copy_is_named_and_not_used(tmp_path, offline):
    shared = tmp_path / "shared.xml"
    shared.write_bytes(b"damaged")
    with pytest.warns(UserWarning, match=f"{shared} is damaged or out of date .*: not using it"):
        with pytest.raises(ConnectionError, match="cannot fetch http://x/c.xml .*no network in this test"):
            downloads.cached_or_shared("http://x/c.xml", tmp_path / "c.xml", SHA, shared)
    assert offline == ["http://x/c.xml"]


def test_a_damaged_cache_with_no_shared_copy_is_downloaded_again_with_a_warning(tmp_path):
    served = tmp_path / "served.xml"
    served.write_bytes(GOOD)
    cached = tmp_path / "c.xml"
    cached.write_bytes(b"damaged")
    with pytest.warns(UserWarning, match=f"the saved {cached} is damaged or out of date .*downloading it again"):
        assert downloads.cached_or_shared(served.as_uri(), cached, SHA, tmp_path / "absent.xml") == cached
    assert cached.read_bytes() == GOOD
