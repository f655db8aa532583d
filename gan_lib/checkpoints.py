"""Runs that survive a disconnected Colab or Kaggle session: the ``Checkpoints`` callback and what it saves.

    ckpt = Checkpoints("/content/drive/MyDrive/dcgan", every=500, keep_best_by="kid_mean", settings={"lr": 2e-4})
    run = train(G, D, opt_g, opt_d, batches, loss, noise, until=6000, callbacks=[ema, ckpt])

A session's first ``train`` call loads the newest good checkpoint (a run saved with other settings is refused) and
the run goes on bit for bit. Only plain values are written: ``torch.load(weights_only=True)`` reads them back.
"""
import json
import sys
import warnings
from pathlib import Path

import torch

from gan_lib.io.files import CheckpointError, load_checkpoint, load_newest, rng_state, save_checkpoint, set_rng_state
from gan_lib.train import Callback, Loop, Run, stateful
from gan_lib.trainer.distributed import is_main as is_main_rank

FORMAT = 2                                     # bump when the layout of training_state() changes


def training_state(loop: Loop) -> dict:
    """All the run needs to go on exactly: weights, optimisers, data, loss, the ``Run``, the random state."""
    loop.run.scaler = loop.scaler.state_dict() if loop.scaler.is_enabled() else {}
    loop.run.callbacks = {cb.name: cb.state_dict() for cb in stateful(loop.callbacks)}
    state_of = lambda obj: obj.state_dict() if hasattr(obj, "state_dict") else {}   # noqa: E731
    return {"format": FORMAT, "torch_version": str(torch.__version__), "step": loop.run.step,
            "G": loop.G.state_dict(), "D": loop.D.state_dict(),
            "opt_g": loop.opt_g.state_dict(), "opt_d": loop.opt_d.state_dict(),
            "data": state_of(loop.batches), "loss": state_of(loop.loss),
            "run": loop.run.state_dict(), "rng": rng_state()}


def restore(state: dict, loop: Loop) -> Run:
    """Load what ``training_state`` saved into the loop's objects; return the run. A misfit is one CheckpointError."""
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
    given, saved = {cb.name: cb for cb in stateful(loop.callbacks)}, loop.run.callbacks
    if missing := sorted(set(given) - set(saved)):           # saved without them, or by an older version
        warnings.warn(f"the checkpoint holds no callback state for {missing} (it has {sorted(saved)}): they keep "
                      f"their current state, so the run will not repeat the original exactly.", stacklevel=2)
    if unused := sorted(set(saved) - set(given)):
        warnings.warn(f"{len(unused)} callback state(s) in the checkpoint were not restored: {unused}.", stacklevel=2)
    for name, cb in given.items():
        if name in saved:
            cb.load_state_dict(saved[name])
    set_rng_state(state["rng"])
    return loop.run


class Checkpoints(Callback):
    """A run's folder: ``last.pt`` (the one before it as ``previous.pt``) and ``best.pt`` by ``keep_best_by``.

    folder        where the run lives (one folder per run)
    every         save every this many steps (and at the end of each ``train`` call, and after Ctrl-C)
    keep_best_by  the evaluation's key that picks best.pt (e.g. "kid_mean"); None: no best.pt
    mode          "min" when lower is better (FID, KID), "max" when higher is
    settings      plain values the run is keyed by (not the step count); a run saved with others is refused
    resume        True: load the newest good checkpoint here before the first step; False: start fresh
    every_seconds also save after this many seconds of training since the last save; None: by steps only
    """

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
        self.resume_on_start, self.every_seconds = resume, every_seconds
        self._best: float | None = None        # best metric so far; read from best.pt after a restart
        self.saved: Path | None = None         # the last file written by this callback
        self.loop: Loop | None = None          # the loop of the last train() call (remember() saves it)
        self._saved_at = (-1, 0.0)             # (step, seconds) of the last save or load
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
            loop.tick()                        # run.seconds up to now
        late = self.every_seconds is not None and run.seconds - self._saved_at[1] >= self.every_seconds
        if is_main_rank() and (run.step % self.every == 0 or loop.metrics or late):
            with loop.paused():
                self.save(training_state(loop), **loop.metrics)
            self._saved_at = (run.step, run.seconds)

    def on_end(self, loop) -> None:
        if is_main_rank() and loop.run.step != self._saved_at[0]:
            self.save(training_state(loop))
        elif loop.run.step == self._saved_at[0]:   # no step since the last save or load: the seconds it holds
            loop.run.seconds = self._saved_at[1]

    def remember(self, name: str, compute):
        """``compute()``'s plain result, saved in last.pt so that a later session reads it instead of computing it;
        call it after ``train``, with a ``name`` that holds all the result depends on (e.g. f"final N={n}")."""
        run = self.loop.run
        if name not in run.results:
            run.results[name] = compute()
            if is_main_rank():                 # the random state of the run, not the one compute() left
                self.save({**training_state(self.loop), **({"rng": self._rng} if self._rng else {})})
        return run.results[name]

    def _changes(self, state: dict) -> list[str] | None:
        """The settings that differ from those ``state`` was saved with (``["lr 0.0002 -> 0.0001"]``); None: unknown."""
        saved = state.get("checkpoint", {}).get("settings") if isinstance(state, dict) else None
        if self.settings is None or saved is None:
            return None
        changed = [key for key in sorted(set(saved) | set(self.settings))   # None is unset: a setting added later
                   if saved.get(key) != self.settings.get(key)]
        return [f"{key} {saved.get(key, '(unset)')!r} -> {self.settings.get(key, '(unset)')!r}" for key in changed]

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
        """Write last.pt (the old one becomes previous.pt), and best.pt when ``metrics[keep_best_by]`` is the best
        so far; return the paths written. Metrics that lack ``keep_best_by`` raise ValueError, writing nothing."""
        metrics = {name: float(value) for name, value in metrics.items()}
        if metrics and self.keep_best_by and self.keep_best_by not in metrics:
            close = [name for name in metrics if name.startswith(self.keep_best_by)]    # "kid" -> "kid_mean"
            hint = f", e.g. keep_best_by={close[0]!r}" if close else ""
            raise ValueError(f"keep_best_by={self.keep_best_by!r} is not among the evaluation's results "
                             f"({', '.join(metrics)}): pick one of them{hint}.")
        state = {**state, "checkpoint": {"metrics": metrics, "settings": self.settings}}
        written = [save_checkpoint(self.folder / "last.pt", state, previous=self.folder / "previous.pt")]
        self._rng = state.get("rng")
        value, best = metrics.get(self.keep_best_by, float("nan")), self.best()     # NaN (or none) is never best
        if value == value and (best is None or (value < best if self.mode == "min" else value > best)):
            self._best = value
            written.append(save_checkpoint(self.folder / "best.pt", state))
        self.saved = written[0]
        return written

    def load(self, map_location="cpu") -> dict | None:
        """The newest checkpoint here that loads (``gan_lib.io.files.load_newest``), None in an empty folder; one
        saved with other ``settings`` raises CheckpointError naming each change (nothing is deleted)."""
        return load_newest(self.folder, map_location, check=self._same_settings)

    def _same_settings(self, state: dict, path: Path) -> dict:
        """``state``, after checking that it was saved with this manager's settings."""
        changes = self._changes(state)
        if changes:
            raise CheckpointError(f"{path} was trained with other settings ({'; '.join(changes)}): use a new "
                                  f"checkpoint folder for the new settings, or {self.RESTART} (nothing has been "
                                  f"deleted).")
        if changes is None and self.settings is not None:
            warnings.warn(f"{path} was saved without settings, so it is loaded unchecked.", stacklevel=4)
        return state


def interrupted(loop: Loop) -> Path | None:
    """After Ctrl-C (once Checkpoints has saved): say in one line where the last step is; return its file or None."""
    checkpoints = loop.find(Checkpoints)
    path = checkpoints.saved if checkpoints is not None else None
    if checkpoints is None:
        said = "nothing was saved (no Checkpoints callback), but G, D and the run hold that step"
    elif path:
        said = f"saved {path}; to go on, run the same cell again (with RESUME = True) or the same command with --resume"
    else:
        said = f"no step finished, so nothing new was saved in {checkpoints.folder}"
    if is_main_rank():
        print(f"training stopped by Ctrl-C at step {loop.run.step}: {said}.", file=sys.stderr, flush=True)
    return path
