"""What ``train`` does around the steps, one callback each (``Watch``, ``Checkpoints`` and ``LiveView`` have their
own modules); each one's ``state_dict()`` is kept in the run and its checkpoints.

    ema = EMA(G, ema_decay(10_000, batch))     # sample from ema.module
    callbacks = [ema, Grids(noise(64), every=500, model=ema), Evaluate(score, every=1000), Budget(600)]
"""
from pathlib import Path
from typing import Callable

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchvision.utils import save_image

from gan_lib.train import Callback, Loop
from gan_lib.explore import sample
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
