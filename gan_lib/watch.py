"""Watching a GAN train: NaN/inf losses, a discriminator that has won, a generator that has collapsed.

``train`` runs a ``Watch`` by default. Each problem is said once, in plain words, with its likely cause and
fix, as a warning and in ``history["warnings"]`` as ``[step, text]``. A NaN or infinite loss stops training
(``TrainingDiverged``; blamed on the data when the step's real batch itself holds NaN/inf) before anything NaN is
saved, or, with ``Watch(on_nan="rollback")`` and a ``CheckpointManager``, puts the last good checkpoint back
and returns normally.
"""
from __future__ import annotations

import math
import warnings

import torch


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite: the weights are no longer usable."""


class Watch:
    """Checks run after every training step (cheap: the numbers are already on the CPU; the spread of a batch
    is measured every ``every`` steps).

    ``d_won_for`` steps with mean D(x) above ``d_real_above`` and mean D(G(z)) below ``d_fake_below``: D has won.
    ``collapsed_for`` checks in a row where G's batch varies less than ``collapse_below`` times a real batch
    (per-pixel standard deviation across the batch, averaged): G has collapsed.
    """

    def __init__(self, on_nan: str = "stop", every: int = 50, d_won_for: int = 200, d_real_above: float = 0.97,
                 d_fake_below: float = 0.03, collapse_below: float = 0.1, collapsed_for: int = 3):
        if on_nan not in ("stop", "rollback"):
            raise ValueError(f"on_nan={on_nan!r}: choose 'stop' or 'rollback' (to the last good checkpoint).")
        self.on_nan, self.every, self.d_won_for = on_nan, every, d_won_for
        self.d_real_above, self.d_fake_below = d_real_above, d_fake_below
        self.collapse_below, self.collapsed_for = collapse_below, collapsed_for
        self.said: set[str] = set()
        self._low_spread = 0

    @staticmethod
    def non_finite(step: int, numbers: dict[str, float], real: torch.Tensor | list | None = None) -> str | None:
        """A sentence naming the NaN/inf numbers of this step, or None when all are finite; when the step's real
        batch (or any of its batches, a list) itself holds NaN/inf, the sentence blames the data instead."""
        bad = {name: value for name, value in numbers.items() if not math.isfinite(value)}
        if not bad:
            return None
        named = ", ".join(f"{name} = {value}" for name, value in bad.items())
        batches = [real] if isinstance(real, torch.Tensor) else list(real or [])
        nan = sum(int(torch.isnan(batch).sum()) for batch in batches)
        inf = sum(int(torch.isinf(batch).sum()) for batch in batches)
        if nan or inf:
            return (f"training diverged at step {step}: the real batch itself holds {nan:,} NaN and {inf:,} inf "
                    f"value(s) of {sum(b.numel() for b in batches):,}, so {named}. The data is at fault, not the "
                    f"learning rate. Fix: find where the images get them (a division by a zero standard deviation "
                    f"when normalising, a damaged file), e.g. with torch.isfinite(images).all() on the data set, "
                    f"clean or drop those images, then resume from a checkpoint saved before this step.")
        return (f"training diverged at step {step}: {named}. Likely cause: a learning rate too high, fp16 overflow, "
                f"or log(0) in a hand-written loss. Fix: lower the learning rates (2e-4 for Adam), use gan_lib's "
                f"losses (they work on logits), or train in bf16/fp32, then resume from a checkpoint saved before "
                f"this step (or start again).")

    def _say(self, kind: str, step: int, text: str, history: dict) -> None:
        if kind not in self.said:
            self.said.add(kind)
            history.setdefault("warnings", []).append([step, text])
            warnings.warn(f"step {step}: {text}", stacklevel=3)

    def check(self, step: int, history: dict, fake: torch.Tensor | None = None,
              real: torch.Tensor | None = None) -> None:
        """Look at the history (and every ``every`` steps at a fake and a real batch); warn once per problem."""
        d_real, d_fake = history.get("D(x)", []), history.get("D(G(z)) before D step", [])
        if len(d_real) >= self.d_won_for and len(d_fake) >= self.d_won_for:
            mean_real = sum(d_real[-self.d_won_for:]) / self.d_won_for
            mean_fake = sum(d_fake[-self.d_won_for:]) / self.d_won_for
            if mean_real > self.d_real_above and mean_fake < self.d_fake_below:
                self._say("d_won", step, (
                    f"D has won: for {self.d_won_for} steps D(x) ≈ {mean_real:.2f} and D(G(z)) ≈ {mean_fake:.2f}, "
                    f"so G gets almost no gradient and stops improving. Likely cause: D learns faster than G "
                    f"(higher learning rate, more D steps, a larger D). Fix: give both the same learning rate, "
                    f"use d_steps=1, one-sided label smoothing (real_label=0.9), or WGAN-GP (lesson 04)."), history)
        if fake is None or real is None or step % self.every:
            return
        spread_fake = fake.detach().float().std(dim=0).mean()
        spread_real = real.detach().float().std(dim=0).mean()
        ratio = (spread_fake / spread_real.clamp_min(1e-8)).item()
        self._low_spread = self._low_spread + 1 if ratio < self.collapse_below else 0
        if self._low_spread >= self.collapsed_for:
            self._say("collapsed", step, (
                f"G has collapsed: its images differ from each other only {ratio:.0%} as much as real ones do, "
                f"so most noise vectors give the same picture (mode collapse). Likely cause: D too weak or too "
                f"strong, or a learning rate too high. Fix: resume from an earlier checkpoint, lower G's "
                f"learning rate, or try WGAN-GP (lesson 04)."), history)
