"""Checkpoint files that survive a killed process or a bad copy: atomic writes, CRC-checked safe loads, one
sentence for every way a file can be wrong, the random state as plain tensors, and the newest good file of a run
folder. ``gan_lib.checkpoints`` builds on these."""
from __future__ import annotations

import contextlib
import os
import pickle
import random
import re
import tempfile
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

NAMES = ("last.pt", "previous.pt", "best.pt")  # what a run's folder holds (gan_lib.checkpoints.Checkpoints)
_FRESH = "delete it and resume from an older checkpoint (Checkpoints falls back by itself)"


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read back (empty, truncated, corrupted, foreign or holding unsafe objects)
    or cannot be written (a full or read-only folder)."""


def _check_plain(obj, where: str = "state") -> None:
    """Raise TypeError at the first value that ``torch.load(weights_only=True)`` would refuse to read back."""
    if isinstance(obj, torch.Tensor) or type(obj) in (str, int, float, bool, type(None)):
        return
    if type(obj) not in (dict, OrderedDict, list, tuple):
        raise TypeError(f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}, which torch.load("
                        f"weights_only=True) cannot read back: make it a tensor, number, string, list or dict.")
    for key, value in obj.items() if isinstance(obj, dict) else enumerate(obj):
        _check_plain(key, f"a key of {where}")
        _check_plain(value, f"{where}[{key!r}]")


def rng_state() -> dict:
    """torch's (CPU and each GPU), NumPy's and Python's global random states, as tensors and lists."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(),                                        # (5056,) uint8
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
            "python": [version, list(internal), gauss_next]}


def set_rng_state(state: dict) -> None:
    """Put back what ``rng_state`` returned, so that the same random numbers come next."""
    torch.set_rng_state(state["torch"].cpu())
    cuda, gpus = state["cuda"], torch.cuda.device_count() if torch.cuda.is_available() else 0
    for i, gpu_state in enumerate(cuda[:gpus]):
        torch.cuda.set_rng_state(gpu_state.cpu(), device=i)
    if len(cuda) != gpus:
        warnings.warn(f"the checkpoint holds {len(cuda)} GPU random state(s) and this machine has {gpus} GPU(s): "
                      f"random numbers drawn on a GPU will not repeat the original run.", stacklevel=2)
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _umask() -> int:
    """The process's umask (read by setting it and putting it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_failed(error: BaseException) -> bool:
    """True for an error of the file write itself: an OSError (ENOSPC, EACCES, ...) or torch's zip writer failing
    (``[enforce fail at inline_container.cc:...]``, ``PytorchStreamWriter failed writing file``)."""
    return isinstance(error, OSError) or (isinstance(error, RuntimeError) and any(
        word in str(error) for word in ("inline_container", "PytorchStreamWriter")))


def _write_temp(path: Path, state: dict) -> Path:
    """Write ``state`` to a new hidden file beside ``path``, flushed to the disk, with the mode a plain open()
    would give (0o666 minus the umask; mkstemp makes 0o600); the caller renames it. A full or read-only folder
    raises CheckpointError (the temporary file removed, ``path`` untouched)."""
    _check_plain(state)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(OSError):     # some FUSE mounts (Google Drive) refuse chmod: keep their mode
            os.chmod(tmp, 0o666 & ~_umask())
    except BaseException as error:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if not _write_failed(error):
            raise
        said = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
        kept = "the checkpoint already there is untouched" if path.exists() else "nothing was left behind"
        raise CheckpointError(f"{path} could not be written because its folder {path.parent} is full or not "
                              f"writable ({said}): {kept}, so free some space or pick another folder and save "
                              f"again.") from None
    return Path(tmp)


def _move_into_place(tmp: Path, path: Path) -> Path:
    os.replace(tmp, path)                      # atomic: a reader sees the old file or the new one, never half
    with contextlib.suppress(OSError):         # make the rename durable too (Windows and some FUSE mounts refuse)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return path


def save_checkpoint(path: str | Path, state: dict, previous: str | Path | None = None) -> Path:
    """Save ``state`` to ``path`` atomically: a process killed mid-save leaves the previous file intact. With
    ``previous``, the file already at ``path`` is renamed to it once the new one is written."""
    path = Path(path)
    tmp = _write_temp(path, state)
    if previous is not None and path.exists():
        os.replace(path, previous)
    return _move_into_place(tmp, path)


def _crc_failure(path: Path) -> str | None:
    """The first member of the zip archive ``path`` whose bytes no longer match the CRC-32 stored with them, or
    None; members saved without one (``torch.serialization.set_crc32_options(False)`` stores 0) are skipped."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.CRC:
                continue
            try:
                with archive.open(info) as member:
                    while member.read(1 << 24):    # zipfile checks the CRC-32 at the end of the member
                        pass
            except (zipfile.BadZipFile, EOFError):
                return info.filename
    return None


def load_checkpoint(path: str | Path, map_location="cpu"):
    """``torch.load(weights_only=True)`` onto ``map_location`` (a GPU run's file loads on a CPU), after checking
    every stored CRC-32 (a flipped byte anywhere is caught); a missing, empty, truncated, corrupted, foreign or
    unsafe file, or a folder, raises FileNotFoundError, IsADirectoryError or CheckpointError with one sentence."""
    path = Path(path)
    if path.is_dir():
        found = sorted((p.name for p in path.glob("*.pt")), key=lambda name: (
            NAMES.index(name) if name in NAMES else 3, name))
        which = (f"pass one of its checkpoint files ({', '.join(found[:5])}), e.g. {path / found[0]}" if found else
                 "it holds no .pt file, so pass the path of the .pt file that save_checkpoint wrote")
        raise IsADirectoryError(f"{path} is a folder, not a checkpoint file: {which}.")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: check the path (on Colab, is Google Drive mounted?) "
                                f"or start a fresh run.")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes), a save cut off before it wrote anything: {_FRESH}.")
    if zipfile.is_zipfile(path) and (member := _crc_failure(path)) is not None:
        raise CheckpointError(f"{path} is corrupted: the bytes of {member} no longer match the checksum stored "
                              f"with them (the file changed after it was saved, e.g. a bad copy or disk): {_FRESH}.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - every failure becomes one sentence about the file
        with open(path, "rb") as f:
            head = f.read(4)
        is_zip = head == b"PK\x03\x04"
        found = re.search(r"GLOBAL (\S+)", str(error))
        pickled = is_zip or found or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"))
        names = []
        if is_zip and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        if is_zip and not names:
            why = f"is truncated ({path.stat().st_size:,} bytes, the end is missing): {_FRESH}"
        elif is_zip and not any(n.endswith("/data.pkl") for n in names):
            why = "is a zip archive but not a PyTorch checkpoint: pass the .pt file that save_checkpoint wrote"
        elif pickled and isinstance(error, pickle.UnpicklingError) and "weights only" in str(error).lower():
            why = (f"holds pickled Python objects{f' ({found[1]})' if found else ''} that torch.load(weights_only="
                   f"True) refuses to run: load it with weights_only=False only if you trust whoever made it")
        elif is_zip:
            why = f"is a damaged PyTorch checkpoint ({str(error).splitlines()[0][:120]}): {_FRESH}"
        else:
            why = ("is not a PyTorch checkpoint: it is neither the zip archive nor the pickle that torch.save "
                   "writes (perhaps a text file, a web page or random bytes), so pass the .pt file that "
                   "save_checkpoint wrote")
        raise CheckpointError(f"{path} {why}.") from None


def load_newest(folder: str | Path, map_location="cpu", check=lambda state, path: state) -> dict | None:
    """A run folder's last.pt, else (with a warning) the newer of previous.pt and best.pt that loads, each passed
    through ``check(state, path)``; None when the folder holds none. A damaged last.pt is kept aside as
    last.damaged.pt, and the temporary files of an interrupted save are removed."""
    folder = Path(folder)
    stale = [p for name in NAMES for p in folder.glob(f".{name}.*.tmp")]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        warnings.warn(f"removed {len(stale)} unfinished temporary file(s) left in {folder} by an interrupted save.",
                      stacklevel=3)
    problems, loaded = [], []
    for path in (folder / name for name in NAMES):
        try:
            state = load_checkpoint(path, map_location)
        except (FileNotFoundError, IsADirectoryError, CheckpointError) as error:
            problems.append(error)
            continue
        if path.name == "last.pt":
            return check(state, path)
        loaded.append((state.get("step", -1), path, state))
    if loaded:
        step, path, state = max(loaded, key=lambda item: item[0])
        check(state, path)
        warnings.warn(f"resuming from {path} (step {step}) because {problems[0]}", stacklevel=3)
        if (folder / "last.pt").exists():      # keep the damaged file aside, out of the next save's way
            os.replace(folder / "last.pt", folder / "last.damaged.pt")
        return state
    if any(isinstance(error, CheckpointError) for error in problems):
        raise CheckpointError(f"no checkpoint in {folder} loads ({' '.join(map(str, problems))}): move the files "
                              f"away to start a fresh run.")
    return None
