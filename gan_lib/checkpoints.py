"""Checkpoints that survive a disconnected Colab or Kaggle session: atomic saves, safe loads, resume.

    manager = CheckpointManager("/content/drive/MyDrive/dcgan", every=500, keep_best_by="fid", mode="min",
                                settings={"lr": 2e-4, "batch": 128, "loss": "wgan-gp"})   # resume() refuses others
    if (state := manager.resume()) is not None:                  # None on a fresh run
        history = restore_training_state(state, G, D, opt_g, opt_d, extras={"ema": ema})["history"]
    if manager.due(history["step"]):                              # in the loop
        manager.save(training_state(G, D, opt_g, opt_d, history, extras={"ema": ema}), fid=fid)

Only tensors, numbers, strings, lists and dicts are written: ``torch.load(weights_only=True)`` reads them back,
so a checkpoint from a stranger cannot run code when it is loaded.
"""
from __future__ import annotations

import contextlib
import json
import os
import pickle
import random
import re
import tempfile
import warnings
import zipfile
from collections import OrderedDict, defaultdict
from pathlib import Path

import numpy as np
import torch

FORMAT = 1                                     # bump when the layout of training_state() changes
_FRESH = "delete it and resume from an older checkpoint (CheckpointManager.resume() falls back by itself)"


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


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Save ``state`` to ``path`` atomically: a process killed mid-save leaves the previous file intact."""
    return _move_into_place(_write_temp(Path(path), state), Path(path))


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
            CheckpointManager.NAMES.index(name) if name in CheckpointManager.NAMES else 3, name))
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


def rng_state(generators: dict[str, torch.Generator] | None = None) -> dict:
    """The state of torch's (CPU and every GPU), NumPy's and Python's global random number generators and of
    the named ``generators``, as tensors and lists that ``weights_only`` loads."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(),                                        # (5056,) uint8
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
            "python": [version, list(internal), gauss_next],
            "generators": {key: gen.get_state() for key, gen in (generators or {}).items()}}


def set_rng_state(state: dict, generators: dict[str, torch.Generator] | None = None) -> None:
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
    for key, gen in _matching("generator", generators, state["generators"]):
        gen.set_state(state["generators"][key].cpu())


def _matching(kind: str, given: dict | None, saved: dict):
    """The items of ``given`` that the checkpoint holds, warning about names it lacks (an older checkpoint, say:
    those objects keep their current state) and about saved ones left unused."""
    given = given or {}
    missing, unused = sorted(set(given) - set(saved)), sorted(set(saved) - set(given))
    if missing:
        warnings.warn(f"the checkpoint holds no {kind} state for {missing} (it has {sorted(saved)}; perhaps it was "
                      f"saved without them, or by an older version): they keep their current state, so the resumed "
                      f"run will not repeat the original exactly.", stacklevel=3)
    if unused:
        warnings.warn(f"{len(unused)} {kind} state(s) in the checkpoint were not restored: {unused}.", stacklevel=3)
    return [(name, obj) for name, obj in given.items() if name in saved]


def training_state(G, D, opt_g, opt_d, history: dict | None = None, *, step: int | None = None,
                   fixed_noise: torch.Tensor | None = None, extras: dict | None = None,
                   generators: dict[str, torch.Generator] | None = None) -> dict:
    """Everything a run needs to continue exactly: weights, optimisers, ``extras`` (anything with state_dict,
    e.g. ``{"sched_g": sched, "ema": ema}``), random states, the step (default ``history["step"]``), the history."""
    history = dict(history or {})
    samples = history.pop("samples", [])                                           # [(step, (N, C, H, W))]
    return {"format": FORMAT, "torch_version": str(torch.__version__),
            "step": int(history.get("step", 0) if step is None else step),
            "G": G.state_dict(), "D": D.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "extras": {name: obj.state_dict() for name, obj in (extras or {}).items()},
            "history": {key: list(v) if isinstance(v, (list, tuple)) else v for key, v in history.items()},
            "samples": [[int(s), images.detach().cpu()] for s, images in samples],
            "fixed_noise": None if fixed_noise is None else fixed_noise.detach().cpu(),
            "rng": rng_state(generators)}


def restore_training_state(state: dict, G, D, opt_g, opt_d, *, extras: dict | None = None,
                           generators: dict[str, torch.Generator] | None = None, rng: bool = True) -> dict:
    """Load what ``training_state`` saved into the same objects; return ``{"step", "history", "fixed_noise"}``,
    the history ready for ``train(..., history=history)``, which continues from ``history["step"]``."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError("this checkpoint was not written by training_state() of this gan_lib version: "
                              "load its parts by hand or start a fresh run.")
    for obj, key in ((G, "G"), (D, "D"), (opt_g, "opt_g"), (opt_d, "opt_d")):
        try:
            obj.load_state_dict(state[key])
        except (RuntimeError, ValueError, KeyError) as err:  # another architecture, width or optimiser
            first = str(err).strip().splitlines()[0]
            raise CheckpointError(f"the checkpoint's {key} does not fit the one you built ({first}): build the "
                                  f"same model/optimiser as the saved run, or start fresh in a new folder.") from err
    for name, obj in _matching("extra", extras, state["extras"]):
        obj.load_state_dict(state["extras"][name])
    if rng:
        set_rng_state(state["rng"], generators)
    history = defaultdict(list, state["history"])
    history["samples"] = [(int(s), images) for s, images in state["samples"]]
    return {"step": state["step"], "history": history, "fixed_noise": state["fixed_noise"]}


def changed_settings(saved: dict, current: dict) -> list[str]:
    """``["lr 0.0002 -> 0.0001", ...]`` for every key whose value differs between two settings dicts."""
    return [f"{key} {saved.get(key, '(unset)')!r} -> {current.get(key, '(unset)')!r}"
            for key in sorted(set(saved) | set(current)) if saved.get(key, "(unset)") != current.get(key, "(unset)")]


class CheckpointManager:
    """``last.pt``, ``previous.pt`` and ``best.pt`` by the metric ``keep_best_by``, in one folder per run:
    ``mode="min"`` when lower is better (FID), ``"max"`` when higher is (a face rate).

    ``settings`` (plain JSON values: architecture, loss, learning rate, batch, data; leave the step count out so
    that a longer run can continue a shorter one) are stored in every save; ``resume()`` refuses a folder whose
    run was trained with other settings, naming each change."""

    NAMES = ("last.pt", "previous.pt", "best.pt")
    RESTART = "set RESUME = False to train from scratch in this one"    # the way out a refusal names (a notebook's)

    def __init__(self, folder: str | Path, every: int = 1000, keep_best_by: str | None = None, mode: str = "min",
                 settings: dict | None = None):
        if mode not in ("min", "max") or every < 1:
            raise ValueError(f"mode={mode!r}, every={every}: mode must be 'min' (lower is better) or 'max', and "
                             f"every >= 1.")
        try:                                   # tuples become lists, as they will when read back
            self.settings = None if settings is None else json.loads(json.dumps(settings, allow_nan=False))
        except (TypeError, ValueError) as error:
            raise TypeError(f"settings must be a dict of plain values (numbers, strings, booleans, lists) so that "
                            f"they can be compared after a restart; {error}.") from None
        self.folder, self.every, self.keep_best_by, self.mode = Path(folder), every, keep_best_by, mode
        self._best: float | None = None        # best metric so far; read from best.pt after a restart

    def _changes(self, state: dict) -> list[str] | None:
        """What differs between this manager's settings and those ``state`` was saved with (None: unknown)."""
        saved = state.get("checkpoint", {}).get("settings") if isinstance(state, dict) else None
        if self.settings is None or saved is None:
            return None
        return changed_settings(saved, self.settings)

    def due(self, step: int) -> bool:
        """True every ``every`` steps: ``if manager.due(step): manager.save(...)``."""
        return step > 0 and step % self.every == 0

    def best(self) -> float | None:
        """The best value of ``keep_best_by`` saved so far (read from best.pt after a restart), or None."""
        path = self.folder / "best.pt"
        if self._best is None and self.keep_best_by and path.exists():
            try:
                state = load_checkpoint(path)
                if not self._changes(state):   # a best.pt of a run with other settings does not count
                    self._best = state["checkpoint"]["metrics"][self.keep_best_by]
            except (CheckpointError, KeyError, TypeError) as error:
                warnings.warn(f"{path} has no readable {self.keep_best_by!r} ({error}): the next save replaces it.")
        return self._best

    def save(self, state: dict, **metrics: float) -> list[Path]:
        """Write last.pt (the old one becomes previous.pt) and, when ``metrics[keep_best_by]`` beats the best so
        far, best.pt too; return the paths written, e.g. ``manager.save(state, fid=41.3)``. Metrics that lack
        ``keep_best_by`` (an evaluation that names it otherwise) raise ValueError before anything is written."""
        metrics = {name: float(value) for name, value in metrics.items()}
        if metrics and self.keep_best_by and self.keep_best_by not in metrics:
            close = [name for name in metrics if name.startswith(self.keep_best_by)]    # "kid" -> "kid_mean"
            raise ValueError(f"keep_best_by={self.keep_best_by!r} is not among the evaluation's results "
                             f"({', '.join(metrics)}): pick one of them"
                             f"{f', e.g. keep_best_by={close[0]!r}' if close else ''}.")
        state, last = {**state, "checkpoint": {"metrics": metrics, "settings": self.settings}}, self.folder / "last.pt"
        tmp = _write_temp(last, state)
        if last.exists():
            os.replace(last, self.folder / "previous.pt")
        written = [_move_into_place(tmp, last)]
        value, best = metrics.get(self.keep_best_by), self.best()
        if value is not None and value == value and (best is None or (value < best if self.mode == "min"
                                                                      else value > best)):  # NaN is never best
            self._best = value
            written.append(save_checkpoint(self.folder / "best.pt", state))
        return written

    def resume(self, map_location="cpu") -> dict | None:
        """The newest checkpoint that loads: last.pt, else (with a warning) the newer of previous.pt and best.pt;
        None when the folder holds none. Unfinished temporary files of an interrupted save are removed. A run
        saved with other ``settings`` raises CheckpointError naming each change; nothing is deleted."""
        stale = [p for name in self.NAMES for p in self.folder.glob(f".{name}.*.tmp")]
        for path in stale:
            path.unlink(missing_ok=True)
        if stale:
            warnings.warn(f"removed {len(stale)} unfinished temporary file(s) left in {self.folder} by an "
                          f"interrupted save.", stacklevel=2)
        problems, loaded = [], []
        for path in (self.folder / name for name in self.NAMES):
            try:
                state = load_checkpoint(path, map_location)
            except (FileNotFoundError, IsADirectoryError, CheckpointError) as error:
                problems.append(error)
                continue
            if path.name == "last.pt":
                return self._same_settings(state, path)
            loaded.append((state.get("step", -1), path, state))
        if loaded:
            step, path, state = max(loaded, key=lambda item: item[0])
            self._same_settings(state, path)
            warnings.warn(f"resuming from {path} (step {step}) because {problems[0]}", stacklevel=2)
            if (self.folder / "last.pt").exists():     # keep the damaged file aside, out of the next save's way
                os.replace(self.folder / "last.pt", self.folder / "last.damaged.pt")
            return state
        if any(isinstance(error, CheckpointError) for error in problems):
            raise CheckpointError(f"no checkpoint in {self.folder} loads ({' '.join(map(str, problems))}): move "
                                  f"the files away to start a fresh run.")
        return None

    def _same_settings(self, state: dict, path: Path) -> dict:
        """``state``, after checking that it was saved with this manager's settings."""
        changes = self._changes(state)
        if changes:
            raise CheckpointError(f"{path} was trained with other settings ({'; '.join(changes)}): use a new "
                                  f"checkpoint folder for the new settings, or {self.RESTART} (nothing has been "
                                  f"deleted).")
        if changes is None and self.settings is not None:
            warnings.warn(f"{path} was saved without settings, so resume() cannot tell whether they changed: it "
                          f"is loaded as it is.", stacklevel=3)
        return state
