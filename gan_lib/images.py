"""Where the lessons' faces come from: ``load_faces`` picks a folder, a download or the offline fallback.

    faces, source = load_faces(DATA_DIR, size=64, limit=N_IMAGES)   # a Dataset of (3, 64, 64) in [-1, 1]
"""
from __future__ import annotations

from pathlib import Path

from gan_lib.data import FaceTensor
from gan_lib.io import downloads
from gan_lib.io.image_files import FaceFolder, _fetch_hw6, _fetch_kaggle
from gan_lib.io.synthetic_faces import cartoon_faces

# Faces already on the machines the kit runs on, tried before any download: Kaggle's copy, the course's shared one.
KNOWN_FACE_FOLDERS = (Path("/kaggle/input/animefacedataset/images"),
                      downloads.SHARED_DATA / "anime-faces-64")


def load_faces(path: str | Path | None = None, size: int = 64, cache: bool = True, limit: int | None = None,
               download_to: str | Path | None = None, allow_download: bool = True, fallback_n: int = 2000):
    """Anime faces as a Dataset of (3, size, size) in [-1, 1], and a line naming the source: ``path`` (its error if
    unusable), else a ``KNOWN_FACE_FOLDERS`` one, else (``allow_download``) Kaggle's or NTU HW6's faces downloaded
    into ``download_to``, else ``fallback_n`` synthetic cartoon faces. ``limit`` keeps the first ``limit``."""
    if path is not None:
        ds = FaceFolder(path, size, cache, limit=limit)
        return ds, f"your folder: {ds.source}"
    for known in KNOWN_FACE_FOLDERS:
        if known.is_dir():
            ds = FaceFolder(known, size, cache, limit=limit)
            return ds, f"found on this machine: {ds.source}"
    reasons = []
    if not allow_download:
        reasons.append("downloads are off (allow_download=False)")
    elif not downloads.network_reachable():
        reasons.append("no network")
    else:
        for name, fetch in (("Kaggle splcher/animefacedataset", _fetch_kaggle), ("NTU HW6 faces", _fetch_hw6)):
            try:
                ds = FaceFolder(fetch(Path(download_to or "data")), size, cache, limit=limit)
                return ds, f"{name}: {ds.source}" + (f" ({reasons[0]})" if reasons else "")
            except Exception as err:  # an optional source failed: say why and try the next
                reasons.append(f"{name} unavailable: {downloads.one_line(err)}")
    n = fallback_n if limit is None else min(fallback_n, limit)
    ds = FaceTensor(cartoon_faces(n, size, seed=0), f"{n:,} synthetic cartoon faces at {size}x{size}")
    return ds, f"offline fallback: {ds.source} from gan_lib.io.synthetic_faces ({'; '.join(reasons)})"
