"""The one training loop every lesson from 02 on uses (lesson 01 writes it out by hand first).

    history = train(G, D, opt_g, opt_d, batches, NonSaturatingLoss(), noise, steps=5000, d_steps=1)

One *step* is ``d_steps`` discriminator updates followed by ``g_steps`` generator updates. The loop
records a history (losses and the loss's own stats, e.g. mean D(x) and D(G(z)) before and after the D step),
shows a ``tqdm.auto`` progress bar, and keeps the generator's output on fixed noise every ``sample_every``
steps, so that the same z can be watched over training.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch
from torchvision.utils import save_image
from tqdm.auto import tqdm

from gan_lib.checkpoints import training_state


def infinite(loader: Iterable) -> Iterator:
    """Cycle through a DataLoader (or any iterable) forever, a fresh pass each time, yielding the images.

    A batch that is a tuple or list (images, labels) yields only its first element.
    """
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch[0] if isinstance(batch, (tuple, list)) else batch
        if empty:
            raise ValueError("the data loader yielded no batch: is the data set empty, or batch_size > "
                             "its size with drop_last=True?")


def train(G, D, opt_g, opt_d, batches: Iterator[torch.Tensor], loss, noise: Callable[[int], torch.Tensor],
          steps: int, d_steps: int = 1, g_steps: int = 1, fixed_noise: torch.Tensor | None = None,
          sample_every: int = 0, history: dict | None = None, progress: bool = True,
          device: torch.device | str = "cpu", grad_clip: float | None = None, record_grad_norms: bool = False,
          checkpoints=None, extras: dict | None = None, on_step: Callable[[int, dict], None] | None = None,
          sample_dir: str | Path | None = None) -> dict:
    """Train G and D for ``steps`` steps and return the history dict.

    ``batches`` yields real image batches (use ``infinite(loader)``); ``noise(n)`` returns n latent vectors.
    ``history`` continues an earlier run's history. ``history["samples"]`` is a list of
    ``(step, G(fixed_noise))`` on the CPU.

    Optional parts, each off by default:
      ``grad_clip``          clip the gradient norm of D's and G's updates to this value (HW6's "medium" step);
      ``record_grad_norms``  append D's per-layer gradient norms (last D update of each step) to
                             ``history["grad_norms_d"]`` (lesson 04's study);
      ``checkpoints``        a ``CheckpointManager``: saves G, D, both optimisers, ``extras`` (schedulers,
                             an EMA model), the history and the random state when due and at the end;
      ``sample_dir``         also write each fixed-noise grid there as ``step_000500.png`` (torchvision's save_image);
      ``on_step(step, history)`` is called after every step (a scheduler, an EMA update, a live plot).
    A loss with an ``after_discriminator_step(D)`` method (weight clipping) has it called after each D update.
    """
    if steps < 0 or d_steps < 1 or g_steps < 1:
        raise ValueError(f"steps={steps}, d_steps={d_steps}, g_steps={g_steps}: steps must be >= 0 and "
                         f"the others >= 1.")
    history = history if history is not None else defaultdict(list)
    history.setdefault("samples", [])
    start = history.get("step", 0)
    after_d_step = getattr(loss, "after_discriminator_step", None)
    bar = tqdm(range(start, start + steps), desc="training", disable=not progress)
    for step in bar:
        # 1) discriminator: d_steps updates on fresh real and (detached) fake batches
        for _ in range(d_steps):
            real = next(batches).to(device)                                   # (B, ...)
            with torch.no_grad():
                fake = G(noise(real.shape[0]).to(device))                     # (B, ...), no graph into G
            loss_d, stats_d = loss.discriminator_loss(D, real, fake)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            if record_grad_norms:   # before any clipping; G's update below also writes into D's .grad
                norms_d = layer_grad_norms(D)
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(D.parameters(), grad_clip)
            opt_d.step()
            if after_d_step is not None:
                after_d_step(D)
        # 2) generator: g_steps updates through the (now fixed) discriminator
        for _ in range(g_steps):
            fake = G(noise(real.shape[0]).to(device))                         # (B, ...)
            loss_g, stats_g = loss.generator_loss(D, fake)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(G.parameters(), grad_clip)
            opt_g.step()

        # one device-to-host copy per step (not one per number): the last D and G updates' figures
        kept = {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), **stats_d, **stats_g}
        for key, value in zip(kept, torch.stack(list(kept.values())).tolist()):
            history[key].append(value)
        history["step"] = step + 1
        if record_grad_norms:
            history["grad_norms_d"].append(norms_d)
        if fixed_noise is not None and sample_every and (step + 1) % sample_every == 0:
            history["samples"].append((step + 1, sample(G, fixed_noise)))
            if sample_dir is not None:
                Path(sample_dir).mkdir(parents=True, exist_ok=True)
                save_image(history["samples"][-1][1], Path(sample_dir) / f"step_{step + 1:06d}.png",
                           nrow=int(len(fixed_noise) ** 0.5), normalize=True, value_range=(-1, 1))
        if on_step is not None:
            on_step(step + 1, history)
        if checkpoints is not None and (checkpoints.due(step + 1) or step + 1 == start + steps):
            checkpoints.save(training_state(G, D, opt_g, opt_d, history, fixed_noise=fixed_noise, extras=extras))
        if progress and (step + 1) % 50 == 0:
            bar.set_postfix(loss_d=f"{history['loss_d'][-1]:.3f}", loss_g=f"{history['loss_g'][-1]:.3f}")
    return history


@torch.no_grad()
def sample(G, z: torch.Tensor) -> torch.Tensor:
    """G(z) in eval mode (dropout and batch-norm statistics frozen), returned on the CPU; G's mode is restored."""
    was_training = G.training
    G.eval()
    try:
        device = next(G.parameters()).device
        return G(z.to(device)).cpu()
    finally:
        G.train(was_training)


def layer_grad_norms(model) -> list[float]:
    """The 2-norm of the gradient of each weight tensor (one per layer, input side first); biases are skipped."""
    norms = [p.grad.norm() for name, p in model.named_parameters() if p.grad is not None and p.dim() > 1]
    return torch.stack(norms).tolist() if norms else []
