"""Watching a GAN train: NaN/inf losses, a discriminator that has won, a generator that has collapsed.

``train`` runs a ``Watch`` unless you pass your own. Each problem is said once per run (a resumed run too), as a
warning and in ``run.warnings`` as ``[step, text]``. A NaN/inf loss raises ``TrainingDiverged`` before anything NaN
is saved; after the fix, the same ``train`` call with ``Checkpoints`` resumes from the last good step.
"""
import math
import warnings

import torch

from gan_lib.train import Callback, Loop


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite: the weights are no longer usable."""


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
        self.check(loop.run.step, loop.run, loop.fake, loop.real)

    def state_dict(self) -> dict:
        return {"said": sorted(self.said), "low_spread": self._low_spread}

    def load_state_dict(self, state: dict) -> None:
        self.said, self._low_spread = set(state["said"]), int(state["low_spread"])

    @staticmethod
    def non_finite(step: int, numbers: dict[str, float], real: torch.Tensor | list | None = None) -> str | None:
        """What is NaN/inf in ``numbers`` and the likely fix (blaming the data when ``real``, a batch or a list of
        them, holds NaN/inf), or None when all are finite."""
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
