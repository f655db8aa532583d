"""Reading folders of images robustly: any file PIL opens, nested or flat, bad files counted with their reason
(``FaceFolder``); copying a folder off a slow mount (``copy_to_local``); fetching the course's face sets.
``gan_lib.data.load_faces`` picks the source."""
from __future__ import annotations

import os
import re
import shutil
import tarfile
import traceback
import warnings
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm

from gan_lib.data import FaceTensor, to_unit_range
from gan_lib.io import downloads

LOOKED_FOR = "every file PIL can open, whatever its extension (.jpg, .png, .webp, .bmp, .gif, .tif, ...)"
ARCHIVES = (".zip", ".tar", ".tgz", ".gz")
def _pixels(err: Exception) -> str:
    """'W x H pixels' of an image Pillow refused as too large, read from the size its check was given."""
    for frame, _ in traceback.walk_tb(err.__traceback__):
        if frame.f_code.co_name == "_decompression_bomb_check" and len(size := frame.f_locals.get("size", ())) == 2:
            return f"{size[0]:,} x {size[1]:,} pixels"
    return str(err).partition("(")[2].partition(")")[0] or "too many pixels"  # Pillow's "(N pixels)"


def _reason(path: Path, err: Exception) -> str:
    """A few words on why ``path`` is not a usable image (the words before any ':' or '(' name the kind)."""
    if isinstance(err, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return (f"too large: {_pixels(err)}, over Pillow's safety limit of {Image.MAX_IMAGE_PIXELS:,} pixels "
                f"(PIL.Image.MAX_IMAGE_PIXELS); resize it, or raise that limit if you trust the file")
    if isinstance(err, PermissionError):
        return "cannot be read (permission denied)"
    if path.is_file() and path.stat().st_size == 0:
        return "empty file (0 bytes)"
    if isinstance(err, UnidentifiedImageError):
        return "not an image"
    return f"corrupt or truncated ({downloads.one_line(err)})"


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB: 16/32-bit grey rescaled to 0-255, transparency composited over white."""
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        a = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        peak = max(peak, float(a.max()))                        # 32-bit data beyond 16 bits: its own maximum
        im = Image.fromarray(np.clip(a * (255.0 / peak) + 0.5, 0, 255).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info):
        im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im.convert("RGBA"))
    return im.convert("RGB")


def _decode(path: Path, size: int) -> np.ndarray:
    """One image file -> uint8 (size, size, 3): centre-cropped to a square, resized with antialiasing."""
    with Image.open(path) as im:
        im.draft("RGB", (size, size))  # JPEG only: decode at 1/2..1/8 scale while that still covers size
        im = _to_rgb(ImageOps.exif_transpose(im))
        return np.array(ImageOps.fit(im, (size, size), Image.Resampling.LANCZOS))


def _probe(path: Path, size: int) -> tuple[int, int]:
    """Open only the header: cheap, and enough to reject non-images (not truncated bodies)."""
    with Image.open(path) as im:
        return im.size


class FaceFolder(FaceTensor):
    """Every image under ``root`` (flat or nested, no class subfolders needed) as (3, size, size) in [-1, 1].

    Files that are not images, empty, truncated, unreadable or over Pillow's size limit are skipped, listed
    in ``.skipped`` as (path, reason) and counted in one warning. ``cache=True`` decodes everything once, on ``workers``
    threads, into ``.images_uint8`` (N, 3, size, size), so later epochs decode nothing; ``cache=False``
    only opens headers here and decodes in ``__getitem__``, where a file that fails is replaced by the
    next good one and counted in ``.skipped_during_epoch`` (per process: DataLoader workers count apart).
    ``limit`` keeps the first ``limit`` files in sorted order.
    """

    def __init__(self, root: str | Path, size: int = 64, cache: bool = True, workers: int | None = None,
                 limit: int | None = None):
        self.root, self.size = Path(root), size
        if self.root.is_file():
            archive = (self.root.name.lower().endswith(ARCHIVES) or zipfile.is_zipfile(self.root)
                       or tarfile.is_tarfile(self.root))
            raise NotADirectoryError(f"{self.root} is a file, not a folder: " + (
                "it is an archive, so extract it first (e.g. gan_lib.io.downloads.safe_extract) and pass the folder "
                "it makes." if archive else "pass the folder that holds the face images."))
        if not self.root.is_dir():
            raise FileNotFoundError(f"the image folder {self.root} does not exist: check the path "
                                    f"(it is relative to {Path.cwd()}).")
        self.skipped, self.skipped_during_epoch, self._bad = [], 0, set()
        files = sorted(self._list_files())[:limit]
        workers = workers or min(8, os.cpu_count() or 1)
        with warnings.catch_warnings():  # an image over Pillow's size limit is skipped, its size named
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if cache:
                self.paths, self.images_uint8 = self._decode_all(files, workers)
            else:
                self.paths = [p for p in files if self._attempt(_probe, p) is not None]
                self.images_uint8 = None
        self.skipped.sort()
        if not self.paths:
            raise FileNotFoundError(self._nothing_found(len(files)))
        if self.skipped:
            named = ", ".join(f"{p.name} ({why})" for p, why in self.skipped[:3])
            warnings.warn(f"skipped {len(self.skipped)} of {len(files)} files in {self.root} that are not "
                          f"readable images: {named}{', ...' if len(self.skipped) > 3 else ''} (see .skipped).",
                          stacklevel=2)
        self.source = (f"{len(self.paths):,} images from {self.root} at {size}x{size}"
                       f"{f', {len(self.skipped)} files skipped' if self.skipped else ''}")

    def _list_files(self) -> list[Path]:
        """Every regular file below root; a folder that cannot be listed goes into ``.skipped``."""
        def unlistable(err: OSError):
            self.skipped.append((Path(err.filename), "folder cannot be read (permission denied)"))
        return [Path(folder, name) for folder, _, names in os.walk(self.root, onerror=unlistable)
                for name in names if Path(folder, name).is_file()]

    def _attempt(self, read, path: Path):
        """``read(path, size)``, or None with the reason recorded in ``.skipped`` (any failure is a skip)."""
        try:
            return read(path, self.size)
        except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ... for bad files
            self.skipped.append((path, _reason(path, err)))
            return None

    def _decode_all(self, files: list[Path], workers: int) -> tuple[list[Path], torch.Tensor]:
        images = torch.empty((len(files), 3, self.size, self.size), dtype=torch.uint8)  # (N, 3, S, S)
        kept: list[Path] = []
        with ThreadPoolExecutor(workers) as pool:  # PIL releases the GIL while it decodes and resizes
            decoded = pool.map(lambda p: self._attempt(_decode, p), files)
            for path, pixels in tqdm(zip(files, decoded), total=len(files), desc="decoding images", unit="img"):
                if pixels is not None:
                    images[len(kept)] = torch.from_numpy(pixels).permute(2, 0, 1)  # (S, S, 3) -> (3, S, S)
                    kept.append(path)
        return kept, images[:len(kept)].clone() if len(kept) < len(files) else images

    def _nothing_found(self, n_files: int) -> str:
        subdirs = [p.name for p in self.root.iterdir() if p.is_dir()]
        archives = [p.name for p in self.root.iterdir() if p.name.lower().endswith(ARCHIVES)]
        hint = (f"; it holds {archives[0]}: extract it first, e.g. gan_lib.io.downloads.safe_extract" if archives
                else f"; its only subfolder {subdirs[0]}/ was searched too" if len(subdirs) == 1 else "")
        kinds = Counter(re.split(r"[:(]", why)[0].strip() for _, why in self.skipped)
        reasons = (f": {', '.join(f'{n} {kind}' for kind, n in kinds.most_common())}; the first, "
                   f"{self.skipped[0][0].name}: {self.skipped[0][1]}" if self.skipped else "")
        return (f"no readable image in {self.root} ({n_files} files, {len(self.skipped)} skipped{reasons}; looked for "
                f"{LOOKED_FOR}){hint}: point it at the folder that holds the face images.")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        if self.images_uint8 is not None:
            return super().__getitem__(i)
        for step in range(len(self.paths)):  # a file that broke since construction: use the next good one
            j = (i + step) % len(self.paths)
            if j in self._bad:
                continue
            pixels = self._attempt(_decode, self.paths[j])
            if pixels is not None:
                return to_unit_range(torch.from_numpy(pixels).permute(2, 0, 1))  # (3, S, S) in [-1, 1]
            self._bad.add(j)
            self.skipped_during_epoch += 1
            warnings.warn(f"{self.paths[j]} can no longer be decoded ({self.skipped[-1][1]}): served the next "
                          f"image instead ({self.skipped_during_epoch} so far).", stacklevel=2)
        raise RuntimeError(f"none of the {len(self.paths)} images in {self.root} can be decoded any more: "
                           f"check the disk or copy the data set again.")


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``b`` is a finished copy of ``a``: the same size and, within a second, the same modification time."""
    if not b.is_file():
        return False
    sa, sb = a.stat(), b.stat()
    return sa.st_size == sb.st_size and abs(sa.st_mtime - sb.st_mtime) < 1  # copy2 keeps the time; FAT/FUSE round it


def copy_to_local(src: str | Path, dst: str | Path) -> Path:
    """Copy a folder (e.g. faces on Colab's slow Google Drive mount) to local disk and return ``dst``.

    Only the files that ``dst`` lacks, or holds with another size or modification time, are copied, so a
    finished copy costs one listing and an interrupted one resumes; files found only in ``dst`` are kept and
    counted. One line says what was done.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"{src} is not a folder: check the path (on Colab, mount Drive first with "
                                f"`from google.colab import drive; drive.mount('/content/drive')`).")
    files = sorted(p for p in src.rglob("*") if p.is_file())
    pairs = [(p, dst / p.relative_to(src)) for p in files]
    missing = [p for p, out in pairs if not out.is_file()]
    changed = [p for p, out in pairs if out.is_file() and not _same_file(p, out)]
    for path in tqdm(missing + changed, desc=f"copying to {dst}", unit="file"):
        out = dst / path.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, out)
    known = {p.relative_to(src) for p in files}
    extra = sum(1 for p in dst.rglob("*") if p.is_file() and p.relative_to(dst) not in known)
    print(f"copy_to_local: copied {len(missing) + len(changed):,} of the {len(files):,} files of {src} to {dst} "
          f"({len(missing):,} missing there, {len(changed):,} different); the other "
          f"{len(files) - len(missing) - len(changed):,} were already there"
          + (f"; {extra:,} files found only in {dst} were kept." if extra else "."))
    return dst


def _fetch_kaggle(root: Path) -> Path:
    import kagglehub  # optional: pip install kagglehub
    return Path(kagglehub.dataset_download(downloads.KAGGLE_ANIME_FACES))


def _fetch_hw6(root: Path) -> Path:
    target = root / "hw6-faces"
    if not target.is_dir():
        archive = root / "hw6-faces.zip"
        if not archive.is_file():
            try:  # Google Drive wants gdown (optional); the Hugging Face copy below is a plain URL
                import gdown
                Path(gdown.download(id=downloads.HW6_FACES_DRIVE_ID, output=f"{archive}.part")).replace(archive)
            except Exception:
                pass  # no gdown or no Drive: the plain URL below
        downloads.download(downloads.HW6_FACES_URL, archive)  # reuses a whole archive, fetches a missing or damaged one
        part = target.with_name(target.name + ".part")
        shutil.rmtree(part, ignore_errors=True)  # a leftover of an interrupted extraction
        downloads.safe_extract(archive, part).replace(target)
    return target
