"""The NTU ML2022 HW6 submission: n = 1,000 generated faces ``1.jpg … 1000.jpg``, 64x64 RGB JPEGs, packed
at the root of a ``.tgz`` (no folder inside), checked before it is handed in.

    report = write_submission(G, "submission", noise=lambda b: gaussian_noise(b, 100), metrics=scores)
    validate_submission("submission.tgz")         # raises ValueError listing every problem found
"""
from __future__ import annotations

import io
import json
import tarfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from PIL import Image
from torch import nn
from torchvision.transforms.functional import resize

from gan_lib.image_metrics import to_uint8_hwc
from gan_lib.train import sample

HW6_COUNT, HW6_SIZE = 1000, 64
ARCHIVE_WARN_BYTES = 2_000_000


@dataclass
class Submission:
    """What ``write_submission`` wrote: the archive to hand in, the folder of JPEGs, the metrics JSON."""
    archive: Path
    folder: Path
    metrics_path: Path
    n: int
    archive_bytes: int


def generate(G: nn.Module, noise: Callable[[int], torch.Tensor], n: int, batch_size: int = 100,
             seed: int = 0) -> torch.Tensor:
    """n samples G(noise(b)) on the CPU, (n, 3, H, W), drawn in batches in eval mode without gradients.

    The noise is drawn under ``seed`` (the same images every time) without disturbing the global RNG.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.cat([sample(G, noise(min(batch_size, n - i))) for i in range(0, n, batch_size)])


def _some(names: list[str], k: int = 3) -> str:
    shown = ", ".join(repr(name) for name in names[:k])
    return shown + (f" and {len(names) - k} more" if len(names) > k else "")


def _number(name: str) -> tuple:
    stem = name.split(".")[0]
    return (0, int(stem), name) if stem.isascii() and stem.isdigit() else (1, 0, name)


def _read(path: Path) -> tuple[dict[str, bytes], list[str], list[str]]:
    """Files (relative name -> bytes), folders, and other members (links, devices) of a folder or a .tgz."""
    files, folders, others = {}, [], []
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            name = p.relative_to(path).as_posix()
            if p.is_symlink() or not (p.is_file() or p.is_dir()):
                others.append(name)
            elif p.is_dir():
                folders.append(name + "/")
            else:
                files[name] = p.read_bytes()
        return files, folders, others
    with tarfile.open(path, "r:*") as tar:
        for m in tar.getmembers():
            name = m.name[2:] if m.name.startswith("./") else m.name   # "./1.jpg" lands at the root too
            if m.isdir():
                folders.append(m.name.rstrip("/") + "/")
            elif m.isfile():
                files[name] = tar.extractfile(m).read()
            else:
                others.append(name)
    return files, folders, others


def _image_problems(images: dict[str, bytes], size: int) -> list[str]:
    unreadable, not_jpeg, wrong_size, wrong_mode = [], [], [], []
    for name in sorted(images, key=_number):
        try:
            with Image.open(io.BytesIO(images[name])) as im:
                im.load()
                if im.format != "JPEG":
                    not_jpeg.append(f"{name} is {im.format}")
                if im.size != (size, size):
                    wrong_size.append(f"{name} is {im.width}x{im.height}")
                if im.mode != "RGB":
                    wrong_mode.append(f"{name} is mode {im.mode}")
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            unreadable.append(f"{name}: {err}")
    checks = [(unreadable, "cannot be read as images", "regenerate them"),
              (not_jpeg, "are not JPEG data", "save them with format JPEG"),
              (wrong_size, f"are not {size}x{size}", f"resize them to {size}x{size}"),
              (wrong_mode, "are not RGB", "convert them with Image.convert('RGB')")]
    return [f"{len(found)} images {what} ({'; '.join(found[:3])}{' …' if len(found) > 3 else ''}): {fix}."
            for found, what, fix in checks if found]


def _problems(files: dict[str, bytes], folders: list[str], others: list[str], where: str, n: int,
              size: int) -> list[str]:
    root = {name: data for name, data in files.items() if "/" not in name}
    nested = sorted(set(files) - set(root), key=_number)
    jpgs = {name: data for name, data in root.items() if name.endswith(".jpg")}
    not_jpg = sorted(set(root) - set(jpgs), key=_number)
    expected = {f"{i}.jpg" for i in range(1, n + 1)}
    missing, unexpected = sorted(expected - set(jpgs), key=_number), sorted(set(jpgs) - expected, key=_number)
    fix_layout = "pack the images themselves, e.g. `cd faces && tar -zcvf ../images.tgz *.jpg`"
    checks = [
        (folders, f"the {where} holds {len(folders)} folders ({_some(folders)}): {fix_layout}."),
        (nested, f"{len(nested)} files are not at the {where}'s root ({_some(nested)}): {fix_layout}."),
        (others, f"{len(others)} members are links or devices, not files ({_some(others)}): remove them."),
        (not_jpg, f"{len(not_jpg)} files are not .jpg images ({_some(not_jpg)}): remove them."),
        (len(jpgs) != n, f"the {where} holds {len(jpgs)} .jpg images at its root, expected {n}."),
        (missing, f"{len(missing)} expected images are missing ({_some(missing)}): name them 1.jpg … {n}.jpg."),
        (unexpected, f"{len(unexpected)} images are misnamed or extra ({_some(unexpected)}): only 1.jpg … {n}.jpg "
                     f"may be there.")]
    return [sentence for found, sentence in checks if found] + _image_problems(jpgs, size)


def validate_submission(path: str | Path, n: int = HW6_COUNT, size: int = HW6_SIZE,
                        raise_on_error: bool = True) -> list[str]:
    """Check a HW6 submission (a ``.tgz`` or the folder it is made from) and return its problems, one sentence
    each: a folder or a file not at the root, non-.jpg or non-file members, the wrong number of images,
    missing or unexpected names (expected ``1.jpg … {n}.jpg``), images that are unreadable, not JPEG, not
    ``size`` x ``size`` or not RGB.

    With ``raise_on_error`` (the default) any problem raises one ``ValueError`` listing them all; otherwise
    the list is returned (empty when all is well). An archive above 2 MB only gives a ``UserWarning``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: pass the .tgz (or folder) that write_submission made.")
    where = "folder" if path.is_dir() else "archive"
    try:
        problems = _problems(*_read(path), where, n, size)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        problems = [f"{path} is not a readable .tgz archive ({err}): pack it with `tar -czf {path.name} *.jpg`."]
    if where == "archive" and path.stat().st_size > ARCHIVE_WARN_BYTES:
        warnings.warn(f"{path} is {path.stat().st_size / 1e6:.1f} MB, above {ARCHIVE_WARN_BYTES / 1e6:.0f} MB: "
                      f"check that it holds only the images, or save them with a lower JPEG quality.", stacklevel=2)
    if problems and raise_on_error:
        raise ValueError(f"{path} is not a valid HW6 submission:\n- " + "\n- ".join(problems))
    return problems


def _refuse_clobber(folder: Path, archive: Path, overwrite: bool) -> None:
    """Refuse, before anything is written, a non-empty folder or an existing archive or JSON unless ``overwrite``."""
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file: pass the name of a folder for the images.")
    held = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if held and not overwrite:
        raise FileExistsError(f"{folder} already holds {len(held)} files ({_some(held)}): choose a new or empty "
                              f"folder, or pass overwrite=True to replace 1.jpg … n.jpg there (the rest is kept).")
    for path in (archive, archive.with_suffix(".json")):
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists: choose another archive name, or pass overwrite=True.")


def write_submission(images_or_G: torch.Tensor | nn.Module, folder: str | Path, n: int = HW6_COUNT, *,
                     noise: Callable[[int], torch.Tensor] | None = None, seed: int = 0, batch_size: int = 100,
                     archive: str | Path | None = None, metrics: dict | None = None, size: int = HW6_SIZE,
                     quality: int = 95, overwrite: bool = False) -> Submission:
    """Write ``1.jpg … n.jpg`` into ``folder``, pack them into a flat ``.tgz``, validate it, and save a JSON of
    facts and ``metrics`` (e.g. AFD, diversity, FID) beside the archive.

    ``images_or_G`` is either images (N >= n, 3, H, W) in [-1, 1] or a generator, sampled with
    ``generate(G, noise, n, batch_size, seed)`` where ``noise(b)`` returns b latent vectors. Images that are
    not ``size`` px (a 96 px model) are resized with antialiasing. The archive defaults to ``<folder>.tgz``
    beside the folder, the JSON to ``<archive stem>.json``. A non-empty folder or an existing archive is
    refused unless ``overwrite=True``, which replaces 1.jpg … n.jpg and the archive; nothing else there is
    deleted or packed.
    """
    folder = Path(folder)
    archive = Path(archive) if archive is not None else folder.with_name(folder.name + ".tgz")
    _refuse_clobber(folder, archive, overwrite)
    if isinstance(images_or_G, nn.Module):
        if noise is None:
            raise ValueError("a generator was given without noise: pass noise=lambda b: <b latent vectors>.")
        images = generate(images_or_G, noise, n, batch_size, seed)               # (n, 3, H, W)
    else:
        images = images_or_G
    if images.dim() != 4 or images.shape[1] != 3 or len(images) < n:
        raise ValueError(f"images of shape {tuple(images.shape)}: pass at least n={n} RGB images (N, 3, H, W).")
    generated_size = list(images.shape[-2:])
    images = images[:n].detach().cpu().float()
    if generated_size != [size, size]:
        images = resize(images, [size, size], antialias=True).clamp(-1, 1)    # (n, 3, size, size)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{i}.jpg" for i in range(1, n + 1)]
    for name, pixels in zip(names, to_uint8_hwc(images)):
        Image.fromarray(pixels).save(folder / name, quality=quality)
    with tarfile.open(archive, "w:gz") as tar:
        for name in names:
            tar.add(folder / name, arcname=name)   # the file alone at the root, no folder entry
    validate_submission(archive, n=n, size=size)
    report = Submission(archive, folder, archive.with_suffix(".json"), n, archive.stat().st_size)
    facts = {"n": n, "image_size": [size, size], "generated_size": generated_size, "quality": quality,
             "archive": archive.name, "archive_bytes": report.archive_bytes,
             "seed": seed if isinstance(images_or_G, nn.Module) else None,
             "metrics": dict(metrics or {})}
    report.metrics_path.write_text(json.dumps(facts, indent=2, default=float) + "\n")
    return report
