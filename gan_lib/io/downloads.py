"""Downloads that cannot leave half a file behind, and archive extraction that cannot write outside its folder."""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import socket
import stat
import tarfile
import threading
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from tqdm.auto import tqdm

# The course server's (and CI's) shared data beside the repository: faces, the MNIST subset, the face cascade.
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

# Kaggle's "Anime Face Dataset" (63,565 faces, ~90-120 px), fetched with `kagglehub`.
KAGGLE_ANIME_FACES = "splcher/animefacedataset"
# The NTU ML HW6 face set (about 71,000 Crypko faces at 96 px, faces/*.jpg). ML2022's sample code clones the
# Hugging Face data set LeoFeng/MLHW_6 and unzips its faces.zip; ML2021's fetched crypko_data.zip with
# `gdown --id` and this Google Drive id. No published checksum exists for either, so none is checked.
HW6_FACES_URL = "https://huggingface.co/datasets/LeoFeng/MLHW_6/resolve/main/faces.zip"
HW6_FACES_DRIVE_ID = "1IGrTr308mGAaCKotpkkm8wTKlWs9Jq-p"
# nagadomi's LBP cascade that finds anime faces (OpenCV), used by the "face rate" metric.
ANIME_CASCADE_URL = "https://raw.githubusercontent.com/nagadomi/lbpcascade_animeface/master/lbpcascade_animeface.xml"
ANIME_CASCADE_SHA256 = "9376d30ac38db6bda2a68b88b3b76bbd7e6aa33af47f7f5c76bc88ca75f1ce30"


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (large archives never sit in memory whole)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".tar.gz")


def one_line(err: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def archive_problem(path: str | Path, name: str | None = None) -> str | None:
    """None when the .zip/.tar/.tgz/.tar.gz at ``path`` opens and every member reads back whole (zip CRCs
    included); otherwise a few words on what is wrong. ``name`` (default: the file's) says which kind it is;
    other names are not checked (None)."""
    path, name = Path(path), (name or Path(path).name).lower()
    if not name.endswith(ARCHIVE_SUFFIXES):
        return None
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            return None if bad is None else f"its member {bad!r} fails its CRC check"
        with tarfile.open(path) as tf:
            for member in tf:
                if member.isfile():
                    with tf.extractfile(member) as f:
                        while f.read(1 << 20):
                            pass
        return None
    except Exception as err:  # zipfile, tarfile, gzip and zlib raise many kinds: any of them means damaged
        return f"it does not read as an archive ({one_line(err)})"


def _fetch(url: str, part: Path, timeout: float) -> None:
    """Stream ``url`` into ``part``; raise one sentence for an HTTP error, no connection, or a short body."""
    fix = "check the address, or download the file by hand and pass its path"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=part.stem, leave=False) as bar:
                while block := response.read(1 << 20):
                    out.write(block)
                    bar.update(len(block))
    except urllib.error.HTTPError as err:
        err.close()                                   # the error holds the response's socket
        part.unlink(missing_ok=True)
        raise ConnectionError(f"the server answered HTTP {err.code} ({err.reason}) for {url}: {fix}.") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as err:
        part.unlink(missing_ok=True)
        why = err.reason if isinstance(err, urllib.error.URLError) else err
        raise ConnectionError(f"cannot fetch {url} ({why}): check the network, or {fix}.") from None
    if total is not None and (got := part.stat().st_size) != total:
        part.unlink()
        raise ConnectionError(f"the download of {url} stopped after {got:,} of the {total:,} bytes the server "
                              f"announced: the connection was cut, so try again (nothing was kept).")


def download(url: str, dest: str | Path, sha256: str | None = None, timeout: float = 30.0) -> Path:
    """Fetch ``url`` to ``dest`` and return ``dest``.

    The bytes stream into ``dest + ".part"`` and are renamed onto ``dest`` only once complete: as many bytes
    as the server announced, the right ``sha256`` when one is given, and, for an archive without a checksum,
    one that reads back whole (``archive_problem``). So ``dest`` is never half a file and a leftover ``.part``
    is never used. An existing ``dest`` is reused when its checksum matches (or, with no checksum, when it is
    not a damaged archive); one that fails is fetched again, with a warning.
    """
    dest = Path(dest)
    if dest.is_file():
        problem = (archive_problem(dest) if sha256 is None else
                   None if sha256_of(dest) == sha256.lower() else "not the expected sha256")
        if problem is None:
            return dest
        warnings.warn(f"the saved {dest} is damaged or out of date ({problem}): downloading it again.",
                      stacklevel=2)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _fetch(url, part, timeout)
    if sha256 is not None and (got := sha256_of(part)) != sha256.lower():
        part.unlink()
        raise ValueError(f"the download of {url} has sha256 {got[:12]}…, not the expected {sha256[:12]}…: the "
                         f"file has changed or was damaged in transit, so try again or get it by hand.")
    if sha256 is None and (problem := archive_problem(part, dest.name)) is not None:
        part.unlink()
        raise ValueError(f"the download of {url} is not a whole archive ({problem}): try again, or get it by "
                         f"hand and pass its path.")
    part.replace(dest)  # atomic on the same file system
    return dest


def cached_or_shared(url: str, cached: str | Path, sha256: str, shared: str | Path | None = None) -> Path:
    """A copy of ``url``'s file with the right ``sha256``: ``cached`` when it checks out, else a ``shared`` copy
    that does (copied over a failing ``cached``, with a warning, so a bad cache never shadows it), else a
    download into ``cached``. A ``shared`` copy that fails its checksum is named in a warning and not used."""
    cached, sha256 = Path(cached), sha256.lower()
    if cached.is_file() and sha256_of(cached) == sha256:
        return cached
    if shared is not None and Path(shared).is_file():
        if sha256_of(shared) != sha256:
            warnings.warn(f"{shared} is damaged or out of date (not the expected sha256): not using it.",
                          stacklevel=2)
        elif not cached.is_file():
            return Path(shared)
        else:
            part = cached.with_name(cached.name + ".part")
            try:
                shutil.copyfile(shared, part)
                part.replace(cached)
            except OSError as err:
                warnings.warn(f"the saved {cached} is damaged or out of date and cannot be replaced "
                              f"({one_line(err)}): using {shared} instead.", stacklevel=2)
                return Path(shared)
            warnings.warn(f"the saved {cached} was damaged or out of date (not the expected sha256): replaced "
                          f"it with the good copy {shared}.", stacklevel=2)
            return cached
    return download(url, cached, sha256=sha256)


def network_reachable(host: str = "www.kaggle.com", port: int = 443, timeout: float = 2.0) -> bool:
    """True when a TCP connection to ``host`` opens within ``timeout`` seconds (DNS look-up included)."""
    result: list[bool] = []

    def attempt():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=attempt, daemon=True)  # a daemon: a stuck DNS look-up cannot hang us
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _archive_path(target: Path, name: str) -> PurePosixPath:
    """Member ``name`` as a path relative to ``target``; raise if it is absolute or has a '..' component."""
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or PureWindowsPath(name).drive or ".." in posix.parts:
        raise ValueError(f"the archive member {name!r} has an absolute path or a '..' component: refusing to "
                         f"extract an archive that could write outside {target}.")
    return posix


def _land(target: Path, path: PurePosixPath | str, links: dict[str, str], follow_last: bool = True) -> str | None:
    """Where ``path`` (relative to ``target``) ends up once the links the archive made so far exist, as a path
    relative to ``target`` ("" is ``target`` itself), or None when it leaves ``target``.

    ``links`` maps the links made by earlier members (relative path -> link text); links already on disk in
    ``target`` are followed too. ``follow_last=False`` stops at the last component (where a symlink is made).
    """
    parts: list[str] = []
    todo = [p for p in PurePosixPath(path).parts]
    hops = 0
    while todo:
        part = todo.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
        if not todo and not follow_last:
            break
        key = "/".join(parts)
        on_disk = target.joinpath(*parts)
        link = links.get(key, os.readlink(on_disk) if key not in links and on_disk.is_symlink() else None)
        if link is None:
            continue
        hops += 1
        if hops > 40:
            return None  # a loop of links: refuse it like an escape
        parts.pop()
        link = link.replace("\\", "/")
        if PurePosixPath(link).is_absolute() or PureWindowsPath(link).drive:
            absolute = Path(link).resolve()
            if not absolute.is_relative_to(target):
                return None
            parts, link = [], absolute.relative_to(target).as_posix()
        todo = list(PurePosixPath(link).parts) + todo
    return "/".join(parts)


def _refuse_unsafe(target: Path, members: list[tuple[str, str | None, bool]]) -> None:
    """Raise unless every member lands inside ``target`` when the members are written in order.

    ``members``: (name, link text or None, whether the link is a tar hard link). A symlink resolves from its own
    folder, a tar hard link from the archive root, and both through the links earlier members made.
    """
    links: dict[str, str] = {}
    for name, link, hard in members:
        posix = _archive_path(target, name)
        where = _land(target, posix, links, follow_last=link is None or hard)
        if link is None or hard:  # a file or folder is written through a link at its own name
            if where is None:
                raise ValueError(f"the archive member {name!r} lands outside {target} through the links that "
                                 f"earlier members make: refusing to extract it.")
        if link is None:
            continue
        absolute = PurePosixPath(link.replace("\\", "/")).is_absolute() or PureWindowsPath(link).drive
        parent = where.rpartition("/")[0] if where is not None and not absolute else None
        pointed = None if parent is None else _land(target, PurePosixPath("" if hard else parent) / link, links)
        if pointed is None:
            raise ValueError(f"the archive member {name!r} points outside {target} (to {link!r}): refusing to "
                             f"extract it.")
        if not hard:
            links[where] = link


def safe_extract(archive: str | Path, target: str | Path) -> Path:
    """Extract a .zip, .tar, .tar.gz or .tgz into ``target`` and return ``target``.

    Every member is checked first, in order, so an archive with an absolute path, a ``..`` component, a device
    file, or a link that escapes ``target`` (alone or through the links earlier members make) is refused before
    anything is written. Tar archives are also extracted with tarfile's ``"data"`` filter where Python has it.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    target = target.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            _refuse_unsafe(target, [(i.filename, zf.read(i).decode() if stat.S_ISLNK(i.external_attr >> 16)
                                     else None, False) for i in infos])
            zf.extractall(target)  # zipfile writes links as small text files, never as links
        return target
    if not tarfile.is_tarfile(archive):
        raise ValueError(f"{archive} is neither a zip nor a tar archive: download it again or check its name.")
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for m in members:
            if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
                raise ValueError(f"the archive member {m.name!r} is a device or pipe: refusing to extract it.")
        _refuse_unsafe(target, [(m.name, m.linkname if (m.issym() or m.islnk()) else None, m.islnk())
                                for m in members])
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4+, 3.10.12+, 3.12+: a second, independent check
            tf.extractall(target, members, filter="data")
        else:
            tf.extractall(target, members)
    return target
