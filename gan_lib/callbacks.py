"""What ``train`` does around the steps, one callback each (``Checkpoints`` has its own module); each one's
``state_dict()`` is kept in the run and its checkpoints. ``LiveView`` and ``TensorBoard`` show a run as it trains.

    ema = EMA(G, ema_decay(10_000, batch))     # sample from ema.module
    callbacks = [ema, Grids(noise(64), every=500, model=ema), Evaluate(score, every=1000), Budget(600)]

``train`` adds a ``Watch`` unless you pass one: it says once per run (as a warning and in ``run.warnings``) that D
has won or G has collapsed, and a NaN/inf loss raises ``TrainingDiverged`` before anything NaN is saved.
"""
import math
import re
import warnings
from pathlib import Path
from typing import Callable

import matplotlib.pyplot as plt
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchvision.utils import save_image

from gan_lib.train import Callback, Loop
from gan_lib.explore import sample, widgets_available
from gan_lib.plots import plot_curves, show_images
from gan_lib.trainer.distributed import is_main


def ema_decay(half_life: float, batch: int) -> float:
    """The decay whose average halves its memory every ``half_life`` images at ``batch`` images per step."""
    if not half_life > 0 or batch < 1:
        raise ValueError(f"half_life={half_life}, batch={batch}: both must be positive (10,000 images is usual).")
    return 0.5 ** (batch / half_life)


class EMA(Callback):
    """``ema = decay * ema + (1 - decay) * G`` (weights and batch-norm buffers) after every step; use ``ema.module``.

    decay   the average's decay per step, e.g. ``ema_decay(10_000, batch)``
    rampup  cap the half-life at ``rampup`` x the images seen so far (StyleGAN2-ADA's ema_rampup, 0.05), so an early
            average does not keep the first random G; None: the full half-life from the first step
    """

    def __init__(self, G: torch.nn.Module, decay: float = 0.999, rampup: float | None = None):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay={decay}: an EMA decay lies strictly between 0 and 1 (0.999 is usual).")
        if rampup is not None and not rampup > 0:
            raise ValueError(f"rampup={rampup}: the ramp-up is a positive fraction of the images seen (0.05 is "
                             f"usual), or None for none.")
        self.decay, self.rampup = decay, rampup
        average = get_ema_multi_avg_fn(decay) if rampup is None else self._ramped
        self.model = AveragedModel(G, multi_avg_fn=average, use_buffers=True)

    def _ramped(self, ema_params, params, n_averaged) -> None:
        """torch's EMA update with this step's decay: a half-life of at most rampup x (n_averaged + 1) steps."""
        decay = min(self.decay, 0.5 ** (1 / (self.rampup * (float(n_averaged) + 1))))
        get_ema_multi_avg_fn(decay)(ema_params, params, n_averaged)

    @property
    def module(self) -> torch.nn.Module:               # the averaged G
        return self.model.module

    def on_step(self, loop: Loop) -> None:
        self.model.update_parameters(loop.G)

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)


class Grids(Callback):
    """G's images on ``fixed_noise`` every ``every`` steps, kept in ``samples`` as ``[(step, (N, C, H, W))]``.

    fixed_noise  the same z for every grid, e.g. ``noise(64)``
    every        steps between grids
    model        what to sample: an ``EMA`` callback (its averaged G) or a module; None: the G being trained
    folder       also write each grid there as step_000500.png; None: keep them in memory only
    keep         how many of the newest grids to keep (1 keeps checkpoints small); None: all
    """

    def __init__(self, fixed_noise: torch.Tensor, every: int, model=None, folder: str | Path | None = None,
                 keep: int | None = None):
        if every < 1 or (keep is not None and keep < 1):
            raise ValueError(f"every={every}, keep={keep}: take a grid every >= 1 steps and keep >= 1 (or None).")
        self.fixed_noise, self.every, self.model, self.keep = fixed_noise.detach().cpu(), every, model, keep
        self.folder = None if folder is None else Path(folder)
        self.samples: list[tuple[int, torch.Tensor]] = []

    def on_step(self, loop: Loop) -> None:
        if loop.run.step % self.every:
            return
        model = self.model.module if isinstance(self.model, EMA) else self.model or loop.G
        self.samples.append((loop.run.step, sample(model, self.fixed_noise)))
        if self.keep is not None:
            del self.samples[:-self.keep]
        if self.folder is not None and is_main():
            self.folder.mkdir(parents=True, exist_ok=True)
            save_image(self.samples[-1][1], self.folder / f"step_{loop.run.step:06d}.png",
                       nrow=int(len(self.fixed_noise) ** 0.5), normalize=True, value_range=(-1, 1))

    def state_dict(self) -> dict:
        return {"fixed_noise": self.fixed_noise, "samples": [[step, images] for step, images in self.samples]}

    def load_state_dict(self, state: dict) -> None:
        self.fixed_noise = state["fixed_noise"]
        self.samples = [(int(step), images) for step, images in state["samples"]]


class Evaluate(Callback):
    """``fn(step) -> {"kid_mean": 0.02, ...}`` every ``every`` steps into ``run.evals`` (on rank 0, not as training
    time); ``Checkpoints(keep_best_by=...)`` keeps the best one as best.pt."""

    def __init__(self, fn: Callable[[int], dict], every: int):
        if every < 1:
            raise ValueError(f"every={every}: evaluate every >= 1 steps (evaluations are slow: hundreds).")
        self.fn, self.every = fn, every

    def on_step(self, loop: Loop) -> None:
        if loop.run.step % self.every or not is_main():
            return
        with loop.paused():
            loop.metrics = {name: float(value) for name, value in self.fn(loop.run.step).items()}
        loop.run.evals.append({"step": loop.run.step, **loop.metrics})


class Budget(Callback):
    """Stop once ``run.seconds`` (training time over all sessions) reaches ``seconds``; with ``until=None`` a run
    trains by the clock alone."""

    def __init__(self, seconds: float):
        if not seconds >= 0:
            raise ValueError(f"seconds={seconds}: a budget is a number of seconds >= 0.")
        self.seconds = seconds

    def on_start(self, loop: Loop) -> None:
        if loop.run.seconds >= self.seconds:
            loop.stop = f"the budget of {self.seconds:,.0f} s of training was already spent"

    def on_step(self, loop: Loop) -> None:
        loop.tick()
        if loop.run.seconds >= self.seconds:
            loop.stop = f"the budget of {self.seconds:,.0f} s of training is spent"


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; after the fix, the same ``train`` call resumes from the last good checkpoint."""


class Watch(Callback):
    """Checks after every step: D has won when for ``d_won_for`` steps mean D(x) > ``d_real_above`` and D(G(z)) <
    ``d_fake_below``; G has collapsed when, ``collapsed_for`` checks in a row (every ``every`` steps), its batch
    varies (per-pixel std) less than ``collapse_below`` times a real batch."""

    def __init__(self, every: int = 50, d_won_for: int = 200, d_real_above: float = 0.97, d_fake_below: float = 0.03,
                 collapse_below: float = 0.1, collapsed_for: int = 3):
        self.every, self.d_won_for = every, d_won_for
        self.d_real_above, self.d_fake_below = d_real_above, d_fake_below
        self.collapse_below, self.collapsed_for = collapse_below, collapsed_for
        self.said: set[str] = set()
        self._low_spread = 0

    order = -10                                         # first: a NaN step stops before anything else sees it

    def on_step(self, loop: Loop) -> None:
        if loop.skipped:                                # fp16: the GradScaler skipped the update, not a NaN
            return
        why = self.non_finite(loop.run.step, loop.numbers, loop.reals)
        if why is not None:
            raise TrainingDiverged(why + _last_good(loop, loop.run.step))
        self.check(loop.run.step, loop.run, loop.fake, loop.reals[-1])

    def state_dict(self) -> dict:
        return {"said": sorted(self.said), "low_spread": self._low_spread}

    def load_state_dict(self, state: dict) -> None:
        self.said, self._low_spread = set(state["said"]), int(state["low_spread"])

    @staticmethod
    def non_finite(step: int, numbers: dict[str, float], batches: list = ()) -> str | None:
        """What is NaN/inf in ``numbers`` and the likely fix (blaming the data when one of the real ``batches`` holds
        NaN/inf), or None when all are finite."""
        bad = {name: value for name, value in numbers.items() if not math.isfinite(value)}
        if not bad:
            return None
        named = ", ".join(f"{name} = {value}" for name, value in bad.items())
        nan = sum(int(torch.isnan(batch).sum()) for batch in batches)
        inf = sum(int(torch.isinf(batch).sum()) for batch in batches)
        if nan or inf:
            return (f"training diverged at step {step}: the real batch itself holds {nan:,} NaN and {inf:,} inf "
                    f"value(s) of {sum(b.numel() for b in batches):,}, so {named}. The data is at fault, not the "
                    f"learning rate. Clean the images (torch.isfinite finds them), then resume from a checkpoint.")
        return (f"training diverged at step {step}: {named}. Likely a learning rate too high, fp16 overflow or log(0) "
                f"in your loss, so lower the learning rates (2e-4 for Adam), use gan_lib's losses or bf16/fp32.")

    def _say(self, kind: str, step: int, text: str, run) -> None:
        if kind not in self.said:
            self.said.add(kind)
            run.warnings.append([step, text])
            warnings.warn(f"step {step}: {text}", stacklevel=4)

    def check(self, step: int, run, fake: torch.Tensor | None = None, real: torch.Tensor | None = None) -> None:
        """Warn (once) when the run's history says D has won, or a fake and a real batch that G has collapsed."""
        d_real, d_fake = run.history.get("D(x)", []), run.history.get("D(G(z)) before D step", [])
        if len(d_real) >= self.d_won_for and len(d_fake) >= self.d_won_for:
            mean_real = sum(d_real[-self.d_won_for:]) / self.d_won_for
            mean_fake = sum(d_fake[-self.d_won_for:]) / self.d_won_for
            if mean_real > self.d_real_above and mean_fake < self.d_fake_below:
                self._say("d_won", step, f"D has won: for {self.d_won_for} steps D(x) ≈ {mean_real:.2f} and "
                          f"D(G(z)) ≈ {mean_fake:.2f}, so G gets no gradient: give D and G the same learning rate, "
                          f"d_steps=1, label smoothing (real_label=0.9) or WGAN-GP (lesson 04).", run)
        if fake is None or real is None or step % self.every:
            return
        spread_fake, spread_real = (batch.detach().float().std(dim=0).mean() for batch in (fake, real))
        ratio = (spread_fake / spread_real.clamp_min(1e-8)).item()
        self._low_spread = self._low_spread + 1 if ratio < self.collapse_below else 0
        if self._low_spread >= self.collapsed_for:
            self._say("collapsed", step, f"G has collapsed: its images differ from each other only {ratio:.0%} as "
                      f"much as real ones do (mode collapse): resume from an earlier checkpoint, lower G's learning "
                      f"rate or try WGAN-GP (lesson 04).", run)


def _last_good(loop, step: int) -> str:
    """A sentence on whether the run's last.pt is good to resume from after a NaN at ``step`` ("" without
    ``Checkpoints``)."""
    from gan_lib.checkpoints import CheckpointError, Checkpoints, load_checkpoint
    checkpoints = loop.find(Checkpoints)
    if checkpoints is None:
        return ""
    folder = checkpoints.folder
    try:
        state = load_checkpoint(folder / "last.pt")
    except FileNotFoundError:
        return f" There is no checkpoint to go back to: none was saved in {folder} before step {step}."
    except CheckpointError as error:
        return f" There is no good checkpoint to go back to: {error}"
    if state.get("step", -1) >= step:
        return (f" There is no good checkpoint to go back to: the one in {folder} is of step {state.get('step')}, "
                f"not from before step {step} (another run in the same folder saved it).")
    bad = [f"{part}.{name}" for part in ("G", "D") for name, value in state.get(part, {}).items()
           if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all()]
    if bad:
        return (f" There is no good checkpoint to go back to: the one in {folder} (step {state['step']}) already "
                f"holds NaN/inf weights ({', '.join(bad[:3])}), so start again after the fix.")
    return f" Nothing NaN was saved: the last checkpoint in {folder} (step {state['step']}) is still good."


def _newest_grid(loop: Loop):
    grids = loop.find(Grids)
    return grids.samples[-1] if grids is not None and grids.samples else None     # (step, images) or None


class LiveView(Callback):
    """Loss curves and the newest ``Grids`` grid, redrawn in place ~``max_renders`` times; static: once at the end."""

    def __init__(self, every: int = 100, smooth: int = 1, total_steps: int | None = None, max_renders: int = 20,
                 static: bool | None = None, title: str | None = None):
        if every < 1 or max_renders < 1:
            raise ValueError(f"every={every}, max_renders={max_renders}: both must be >= 1, e.g. every=100.")
        self.every = max(every, math.ceil(total_steps / max_renders)) if total_steps else every
        self.smooth, self.max_renders, self.title = smooth, max_renders, title
        self.static = not widgets_available() if static is None else static
        self.handle = self.figure = None             # the output area's display handle, the last figure
        self.renders = 0
        self.step = self.drawn_step = None           # the last step seen, the last step drawn

    def on_step(self, loop: Loop) -> None:
        self.step = loop.run.step
        if not self.static and self.step % self.every == 0:
            with loop.paused():                      # drawing is not training time
                self.draw(loop)

    def on_end(self, loop: Loop) -> None:
        if self.step != self.drawn_step:             # this call trained, and its last step is not drawn yet
            self.draw(loop)

    def draw(self, loop: Loop) -> None:
        """Curves left, the newest grid right: shown in the output area, or (static) left open in ``.figure``."""
        from IPython.display import display

        history = loop.run.history
        panels = {"losses": [key for key in ("loss_d", "loss_g") if key in history]}
        if "W estimate" in history:
            panels["W estimate"] = ["W estimate"]
        fig = self.figure = plot_curves(history, panels, smooth=self.smooth, title=self.title)
        if (grid := _newest_grid(loop)) is not None:     # one more column for the grid
            step, images = grid
            layout = fig.add_gridspec(1, len(panels) + 1)
            for i, ax in enumerate(fig.axes):
                ax.set_subplotspec(layout[i])
            fig.set_figwidth(fig.get_figwidth() + fig.get_figheight())     # a square more
            show_images(images, nrow=min(8, math.isqrt(len(images))), title=f"fixed noise, step {step}",
                        ax=fig.add_subplot(layout[-1]))
        self.renders += 1
        self.drawn_step = loop.run.step
        if self.static:
            return                                   # the notebook (or plt.show()) shows it once
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)                               # shown through the handle, not again at the end of the cell
        if self.renders % self.max_renders == 0:
            self.every *= 2                          # without total_steps, or when a run goes on longer


class TensorBoard(Callback):
    """Every ``every`` steps, log the interval's mean of each per-step number and each new grid to ``.writer``."""

    def __init__(self, log_dir: str, every: int = 10):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ImportError("TensorBoard logging needs the tensorboard package: `pip install tensorboard`, "
                              "or leave the logger out.") from None
        if every < 1:
            raise ValueError(f"every={every}: log every >= 1 steps, e.g. every=10.")
        self.writer, self.every, self.logged_grid = SummaryWriter(log_dir), every, None

    def on_step(self, loop: Loop) -> None:
        step = loop.run.step
        if step % self.every:
            return
        for key, values in loop.run.history.items():
            if values and isinstance(values[-1], (int, float)):
                recent = values[-self.every:]                              # this interval's steps
                self.writer.add_scalar(re.sub(r"[^\w./-]+", "_", key).strip("_"), sum(recent) / len(recent), step)
        if (grid := _newest_grid(loop)) is not None and grid[0] != self.logged_grid:
            self.logged_grid, images = grid                                # (N, C, H, W) in [-1, 1]
            self.writer.add_images("fixed noise", images.add(1).div(2), self.logged_grid)   # one grid, 8 a row
        self.writer.flush()
