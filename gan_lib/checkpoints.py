"""Runs that survive a disconnected Colab or Kaggle session: what a checkpoint holds, and the ``Checkpoints``
callback that saves it and restores it.

    ckpt = Checkpoints("/content/drive/MyDrive/dcgan", every=500, keep_best_by="kid_mean",
                       settings={"lr": 2e-4, "batch": 128, "loss": "bce"})      # a run with other values is refused
    run = train(G, D, opt_g, opt_d, batches, loss, noise, until=6000, callbacks=[ema, ckpt])

The first ``train`` call of a session loads the newest good checkpoint in the folder (weights, optimisers, the
data's position, the loss's schedule, the ``Run`` with every callback's state, the random state), so the run goes
on bit for bit where it stopped, or is only loaded when it is finished. Only tensors, numbers, strings, lists and
dicts are written: ``torch.load(weights_only=True)`` reads them back, so a stranger's checkpoint runs no code.
"""
from __future__ import annotations

import json
import os
import random
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from gan_lib.io.files import (NAMES, CheckpointError, _move_into_place, _write_temp, load_checkpoint,
                              save_checkpoint)
from gan_lib.train import Callback, Loop, Run
from gan_lib.trainer.distributed import is_main as is_main_rank

FORMAT = 2                                     # bump when the layout of training_state() changes

__all__ = ["CheckpointError", "Checkpoints", "load_checkpoint", "restore", "save_checkpoint", "training_state"]


def rng_state() -> dict:
    """The state of torch's (CPU and every GPU), NumPy's and Python's global random number generators, as tensors
    and lists that ``weights_only`` loads."""
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
    return [obj for name, obj in given.items() if name in saved]



def _stateful(callbacks) -> list:
    """The callbacks that keep a state (those that override ``state_dict``)."""
    return [cb for cb in callbacks if type(cb).state_dict is not Callback.state_dict]


def training_state(loop: Loop) -> dict:
    """Everything the run needs to go on exactly: weights, optimisers, the data's and the loss's state (when they
    have a ``state_dict``), the ``Run`` (with the GradScaler and each callback's state), the random state."""
    loop.run.scaler = loop.scaler.state_dict() if loop.scaler.is_enabled() else {}
    loop.run.callbacks = {cb.name: cb.state_dict() for cb in _stateful(loop.callbacks)}
    state_of = lambda obj: obj.state_dict() if hasattr(obj, "state_dict") else {}   # noqa: E731
    return {"format": FORMAT, "torch_version": str(torch.__version__), "step": loop.run.step,
            "G": loop.G.state_dict(), "D": loop.D.state_dict(),
            "opt_g": loop.opt_g.state_dict(), "opt_d": loop.opt_d.state_dict(),
            "data": state_of(loop.batches), "loss": state_of(loop.loss),
            "run": loop.run.state_dict(), "rng": rng_state()}


def restore(state: dict, loop: Loop, rng: bool = True) -> Run:
    """Load what ``training_state`` saved into the loop's objects (the models, optimisers, data, loss, run and
    callbacks); return the run. A checkpoint of another architecture or gan_lib version is refused in one sentence."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError("this checkpoint was not written by training_state() of this gan_lib version: "
                              "load its parts by hand or start a fresh run.")
    for obj, key in ((loop.G, "G"), (loop.D, "D"), (loop.opt_g, "opt_g"), (loop.opt_d, "opt_d")):
        try:
            obj.load_state_dict(state[key])
        except (RuntimeError, ValueError, KeyError) as err:  # another architecture, width or optimiser
            first = str(err).strip().splitlines()[0]
            raise CheckpointError(f"the checkpoint's {key} does not fit the one you built ({first}): build the "
                                  f"same model/optimiser as the saved run, or start fresh in a new folder.") from err
    for obj, key in ((loop.batches, "data"), (loop.loss, "loss")):
        if state[key] and hasattr(obj, "load_state_dict"):
            obj.load_state_dict(state[key])
    loop.run.load_state_dict(state["run"])
    for cb in _matching("callback", {cb.name: cb for cb in _stateful(loop.callbacks)}, loop.run.callbacks):
        cb.load_state_dict(loop.run.callbacks[cb.name])
    if rng:
        set_rng_state(state["rng"])
    return loop.run


def changed_settings(saved: dict, current: dict) -> list[str]:
    """``["lr 0.0002 -> 0.0001", ...]`` for every key whose value differs between two settings dicts."""
    return [f"{key} {saved.get(key, '(unset)')!r} -> {current.get(key, '(unset)')!r}"
            for key in sorted(set(saved) | set(current)) if saved.get(key, "(unset)") != current.get(key, "(unset)")]



class Checkpoints(Callback):
    """A run's folder: ``last.pt`` (the one before it as ``previous.pt``) and ``best.pt`` by ``keep_best_by``.

    folder        where the run lives (one folder per run)
    every         save every this many steps (and at the end of each ``train`` call, and after Ctrl-C)
    keep_best_by  an evaluation's key (``Evaluate``'s results, e.g. "kid_mean"); None: no best.pt
    mode          "min" when lower is better (FID, KID), "max" when higher is (a face rate)
    settings      plain JSON values the run is keyed by (architecture, loss, lr, batch, data; not the step count,
                  so that a longer run continues a shorter one); None: not checked
    resume        True: before the first step, load the newest good checkpoint here (a finished run is only
                  loaded); one saved with other ``settings`` is refused, naming each change. False: start fresh
    every_seconds also save after this many seconds of training since the last save; None: by steps only
    """

    NAMES = NAMES
    order = 10                                 # after every other callback: it saves what they updated
    RESTART = "set RESUME = False to train from scratch in this one"    # the way out a refusal names (a notebook's)

    def __init__(self, folder: str | Path, every: int = 1000, keep_best_by: str | None = None, mode: str = "min",
                 settings: dict | None = None, resume: bool = True, every_seconds: float | None = None):
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
        self.resume_on_start, self.every_seconds = resume, every_seconds
        self.saved: Path | None = None         # the last file written by this callback
        self.loop: Loop | None = None          # the loop of the last train() call (remember() saves it)
        self._saved_at: tuple[int, float] = (-1, 0.0)   # (step, seconds) of the last save or load
        self._rng = None                       # the random state of the last save or load (remember() keeps it)

    # --- as a callback: load before the first step, save when due and at the end ---
    def on_start(self, loop) -> None:
        self.loop, self._saved_at = loop, (loop.run.step, loop.run.seconds)
        if not self.resume_on_start or loop.run.step:      # off, or a run this session already holds
            return
        state = self.load()
        if state is not None:
            restore(state, loop)
            self._rng = state["rng"]
            loop.run.resumed_from = loop.run.step
            self._saved_at = (loop.run.step, loop.run.seconds)
            finished = loop.until is not None and loop.run.step >= loop.until
            if is_main_rank():                 # under DDP every rank loads it; one says so
                print(f"{self.folder}: resumed at step {loop.run.step:,}"
                      + (" (finished: loaded, nothing to train)" if finished else ""))

    def on_step(self, loop) -> None:
        run = loop.run
        if self.every_seconds is not None:
            loop.tick()                            # run.seconds up to now (it is otherwise brought up to date rarely)
        late = self.every_seconds is not None and run.seconds - self._saved_at[1] >= self.every_seconds
        if is_main_rank() and (self.due(run.step) or loop.metrics or late):
            with loop.paused():
                self.save(training_state(loop), **loop.metrics)
            self._saved_at = (run.step, run.seconds)

    def on_end(self, loop) -> None:
        if is_main_rank() and loop.run.step != self._saved_at[0]:
            self.save(training_state(loop))
            self._saved_at = (loop.run.step, loop.run.seconds)
        elif loop.run.step == self._saved_at[0]:   # no step since the last save or load: the seconds it holds
            loop.run.seconds = self._saved_at[1]

    def remember(self, name: str, compute):
        """``compute()``'s result (plain numbers, strings, lists, dicts), kept in the run's ``results`` and saved
        in last.pt, so a session that loads the finished run reads it instead of computing it again (an
        evaluation of minutes). Call it after ``train`` with this callback; give ``name`` everything the result
        depends on besides the run (e.g. f"final N={n} {features}")."""
        run = self.loop.run
        if name not in run.results:
            run.results[name] = compute()
            if is_main_rank():                 # the random state of the run, not the one compute() left
                self.save({**training_state(self.loop), **({"rng": self._rng} if self._rng else {})})
        return run.results[name]

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
        self._rng = state.get("rng")
        value, best = metrics.get(self.keep_best_by), self.best()
        if value is not None and value == value and (best is None or (value < best if self.mode == "min"
                                                                      else value > best)):  # NaN is never best
            self._best = value
            written.append(save_checkpoint(self.folder / "best.pt", state))
        self.saved = written[0]
        return written

    def load(self, map_location="cpu") -> dict | None:
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
            warnings.warn(f"{path} was saved without settings, so Checkpoints cannot tell whether they changed: it "
                          f"is loaded as it is.", stacklevel=3)
        return state


def interrupted(loop: Loop) -> Path | None:
    """After Ctrl-C, once the call has ended as a normal one does (Checkpoints saved the last finished step): say
    in one line where that step is and how to go on; return the checkpoint's path (None: nothing saved)."""
    checkpoints, run = loop.find(Checkpoints), loop.run
    path = checkpoints.saved if checkpoints is not None else None
    if is_main_rank():
        said = ("nothing was saved (no Checkpoints callback), but G, D and the run hold that step" if checkpoints
                is None else f"saved {path}; to go on, run the same cell again (with RESUME = True) or the same "
                f"command with --resume" if path else f"no step finished, so nothing new was saved in "
                f"{checkpoints.folder}")
        print(f"training stopped by Ctrl-C at step {run.step}: {said}.", file=sys.stderr, flush=True)
    return path
