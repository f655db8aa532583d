"""The one training loop every lesson from 02 on uses (lesson 01 writes it out by hand first).

    history = train(G, D, opt_g, opt_d, batches, NonSaturatingLoss(), noise, steps=5000, d_steps=1)

One *step* is ``d_steps`` discriminator updates followed by ``g_steps`` generator updates; the first generator
update reuses the last discriminator update's fake batch, as the PyTorch DCGAN tutorial does. The loop
records a history (losses and the loss's own stats, e.g. mean D(x) and D(G(z)) before and after the D step),
shows a ``tqdm.auto`` progress bar, and keeps the generator's output on fixed noise every ``sample_every``
steps, so that the same z can be watched over training.
"""
from __future__ import annotations

import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchvision.utils import save_image
from tqdm.auto import tqdm

from gan_lib.checkpoints import CheckpointError, load_checkpoint, restore_training_state, training_state
from gan_lib.trainer.distributed import is_main, no_sync, unwrap
from gan_lib.fast import choose_precision, compile_models
from gan_lib.watch import TrainingDiverged, Watch


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped ``train``: ``step`` (the last finished step), ``history`` and ``path`` (the checkpoint saved
    then, or None)."""

    def __init__(self, step: int, history: dict, path: Path | None):
        super().__init__(f"training stopped by Ctrl-C at step {step}")
        self.step, self.history, self.path = step, history, path


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
          sample_dir: str | Path | None = None, precision: str = "fp32", compile: bool = False,
          watch: Watch | bool = True, ema: AveragedModel | None = None,
          evaluate: Callable[[int], dict] | None = None, evaluate_every: int = 0) -> dict:
    """Train G and D for ``steps`` steps and return the history dict.

    ``batches`` yields real image batches (``ImageBatches``, or ``infinite(loader)``); ``noise(n)`` returns n
    latent vectors. ``history`` continues an earlier run's history. ``history["samples"]`` is a list of
    ``(step, G(fixed_noise))`` on the CPU; ``history["train_seconds"]`` adds up the time spent in here.

    Optional parts, each off by default:
      ``grad_clip``          clip the gradient norm of D's and G's updates to this value (HW6's "medium" step);
      ``record_grad_norms``  append D's per-layer gradient norms (last D update of each step) to
                             ``history["grad_norms_d"]`` (lesson 04's study);
      ``checkpoints``        a ``CheckpointManager``: saves G, D, both optimisers, ``extras`` (schedulers,
                             an EMA model, the ``ImageBatches``), the history and the random state when due and
                             at the end;
      ``sample_dir``         also write each fixed-noise grid there as ``step_000500.png`` (torchvision's save_image);
      ``on_step(step, history)`` is called after every step (a scheduler, an EMA update, a live plot);
      ``precision``          "fp32", "bf16" or "fp16" (autocast; fp16 with one GradScaler for both models, the
                             gradient penalty computed on unscaled gradients) or "auto" (``fast.choose_precision``);
      ``compile``            ``torch.compile`` G and D (``fast.compile_models``), eager again if the first step fails;
      ``ema``                an exponential moving average of G (``make_ema``), updated after every step and
                             saved with the checkpoints (as extra ``"ema"``);
      ``evaluate(step)``     called every ``evaluate_every`` steps; returns numbers (``{"kid": 0.02}``), kept in
                             ``history["evals"]`` and passed to ``checkpoints.save`` (its ``keep_best_by`` keeps
                             the best one as best.pt); under DDP only on rank 0, while the other ranks
                             wait at the next step (keep it well under the process group's timeout).
    ``watch`` (on by default; ``False`` turns it off, or pass your own ``Watch``) says in plain words when D has
    won or G has collapsed, and stops on a NaN/inf loss before anything NaN is saved (see ``gan_lib.watch``).
    Ctrl-C (a notebook's interrupt) saves a checkpoint at the last finished step when ``checkpoints`` is given,
    prints one line saying where and how to go on, and raises ``TrainingInterrupted`` (a KeyboardInterrupt that
    carries ``step``, ``history`` and ``path``) rather than returning: a notebook's "run all" and a loop over
    ``train`` calls stop as the user asked, and a command line can exit with 130. A Ctrl-C in the middle of a step
    saves the weights as they are (that step partly done), so resuming from it is not bit-identical.
    A loss with an ``after_discriminator_step(D)`` method (weight clipping) has it called after each D update.
    Several GPUs: pass G and D wrapped by ``gan_lib.trainer.distributed.wrap`` (DDP); the plain models inside are what is
    saved, sampled and averaged, and only rank 0 writes checkpoints and sample files and shows the progress bar.
    """
    if steps < 0 or d_steps < 1 or g_steps < 1:
        raise ValueError(f"steps={steps}, d_steps={d_steps}, g_steps={g_steps}: steps must be >= 0 and "
                         f"the others >= 1.")
    history = history if history is not None else defaultdict(list)
    history.setdefault("samples", [])
    start = history.get("step", 0)
    watch = Watch() if watch is True else watch or None
    after_d_step = getattr(loss, "after_discriminator_step", None)
    if ema is not None:
        extras = {**(extras or {}), "ema": ema}
    if evaluate_every < 0 or (evaluate_every and evaluate is None):
        raise ValueError(f"evaluate_every={evaluate_every}: pass evaluate=fn(step) -> dict, and evaluate_every >= 1.")
    device_type = torch.device(device).type
    amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[choose_precision(device, precision)]
    scaler = torch.amp.GradScaler(device_type, enabled=amp_dtype is torch.float16)
    wrapped = (G, D)                                   # DDP wrappers under torch.distributed, else G and D
    G, D = unwrap(G), unwrap(D)                        # the plain models: saved, sampled, averaged
    models = compile_models(*wrapped, double_backward=hasattr(loss, "grad_scale")) if compile else wrapped

    def update(model, opt, loss_value, norms_into: list | None = None) -> bool:
        """backward, (unscale, record norms, clip), step: one optimiser update, scaled when in fp16. True when
        the GradScaler found inf/NaN gradients and skipped the update (it then lowers its scale)."""
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss_value).backward()
        if grad_clip is not None or norms_into is not None:
            scaler.unscale_(opt)                       # the true gradients, before any clipping
        if norms_into is not None:                     # G's update below also writes into D's .grad
            norms_into[:] = layer_grad_norms(model)
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scale = scaler.get_scale() if scaler.is_enabled() else None
        scaler.step(opt)
        scaler.update()
        return scale is not None and scaler.get_scale() < scale

    def one_step(G_, D_):
        """d_steps D updates on fresh real and fake batches, then g_steps G updates through the updated D.

        As in the PyTorch DCGAN tutorial, the first G update reuses the fake batch of the last D update (made
        with its graph kept for this): one G forward less per step. Further G updates draw new noise."""
        norms_d, skipped, reals = ([] if record_grad_norms else None), False, []
        for i in range(d_steps):
            real = next(batches).to(device)                                   # (B, ...)
            reals.append(real)
            with torch.autocast(device_type, dtype=amp_dtype, enabled=amp_dtype is not None):
                with torch.set_grad_enabled(i == d_steps - 1):
                    fake = G_(noise(real.shape[0]).to(device))                # (B, ...)
                if hasattr(loss, "grad_scale"):        # the penalty differentiates D's gradient: scale it too
                    loss.grad_scale = scaler.get_scale() if scaler.is_enabled() else 1.0
                loss_d, stats_d = loss.discriminator_loss(D_, real, fake.detach())   # no gradient into G
            skipped |= update(D, opt_d, loss_d, norms_d)
            if after_d_step is not None:
                after_d_step(D)
        for j in range(g_steps):
            with no_sync(wrapped[1]):      # under DDP: D's gradient from G's loss is discarded, so not averaged
                with torch.autocast(device_type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    if j > 0:
                        fake = G_(noise(real.shape[0]).to(device))            # (B, ...)
                    loss_g, stats_g = loss.generator_loss(D_, fake)
                skipped |= update(G, opt_g, loss_g)
        kept = {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), **stats_d, **stats_g}
        return reals, fake, kept, norms_d, skipped

    bar = tqdm(range(start, start + steps), desc="training", unit="step", disable=not (progress and is_main()))
    started = first = time.perf_counter()     # started: for history["train_seconds"]; first: for img/s
    images, timed = 0, False                   # timed: the time since `started` is in history["train_seconds"]

    def add_time() -> None:
        """Add the time trained since ``started`` to the history (once: a save's own time is not training)."""
        nonlocal timed
        if not timed:
            history["train_seconds"] = history.get("train_seconds", 0.0) + time.perf_counter() - started
            timed = True

    def save(**metrics) -> list[Path]:
        """Write a checkpoint whose history holds the time trained so far; the save itself is not counted, so a
        run that ends with a save returns exactly the seconds that checkpoint holds."""
        nonlocal started
        add_time()
        paths = checkpoints.save(training_state(G, D, opt_g, opt_d, history, fixed_noise=fixed_noise, extras=extras),
                                 **metrics)
        started = time.perf_counter()
        return paths

    try:
        for step in bar:
            try:
                reals, fake, kept, norms_d, skipped = one_step(*models)
            except Exception as err:  # noqa: BLE001 - only a compiled model's first step falls back to eager
                if models == wrapped or step > start:
                    raise
                said = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
                warnings.warn(f"torch.compile failed at the first step ({type(err).__name__}: {said}); training "
                              f"eagerly.")
                models = wrapped
                reals, fake, kept, norms_d, skipped = one_step(*wrapped)
            real, timed = reals[-1], False                                    # (B, ...): the last D update's
            images += d_steps * real.shape[0]
            # one device-to-host copy per step (not one per number): the last D and G updates' figures
            numbers = dict(zip(kept, torch.stack([v.float() for v in kept.values()]).tolist()))
            if skipped:       # fp16 only: inf/NaN gradients, an update skipped; the GradScaler lowered its scale
                history["fp16_skipped_steps"] = history.get("fp16_skipped_steps", 0) + 1
            elif watch is not None and (why := watch.non_finite(step + 1, numbers, reals)) is not None:
                return _diverged(why, step + 1, watch, checkpoints, G, D, opt_g, opt_d, extras)
            else:
                for key, value in numbers.items():
                    history[key].append(value)
                if record_grad_norms:
                    history["grad_norms_d"].append(norms_d)
            history["step"] = step + 1
            if ema is not None:
                ema.update_parameters(G)
            if watch is not None:
                watch.check(step + 1, history, fake, real)
            if fixed_noise is not None and sample_every and (step + 1) % sample_every == 0:
                history["samples"].append((step + 1, sample(G, fixed_noise)))
                if sample_dir is not None and is_main():
                    Path(sample_dir).mkdir(parents=True, exist_ok=True)
                    save_image(history["samples"][-1][1], Path(sample_dir) / f"step_{step + 1:06d}.png",
                               nrow=int(len(fixed_noise) ** 0.5), normalize=True, value_range=(-1, 1))
            if on_step is not None:
                on_step(step + 1, history)
            metrics = {}
            if evaluate_every and (step + 1) % evaluate_every == 0 and is_main():   # the other ranks wait
                metrics = {name: float(value) for name, value in evaluate(step + 1).items()}
                history.setdefault("evals", []).append({"step": step + 1, **metrics})
            if checkpoints is not None and is_main() and (checkpoints.due(step + 1) or step + 1 == start + steps
                                                          or metrics):
                save(**metrics)
            if progress and (step + 1) % 50 == 0:
                rate = images / max(time.perf_counter() - first, 1e-9)
                bar.set_postfix({"loss_d": f"{numbers['loss_d']:.3f}", "loss_g": f"{numbers['loss_g']:.3f}",
                                 "img/s": f"{rate:,.0f}"})
    except KeyboardInterrupt:
        bar.close()
        add_time()
        raise _interrupted(history, start, checkpoints, save) from None
    if steps:
        add_time()
    return history


def _interrupted(history: dict, start: int, checkpoints, save: Callable[[], list[Path]]) -> TrainingInterrupted:
    """After Ctrl-C: save a checkpoint at the last finished step (when one finished in this call), print one line
    saying where and how to go on, and return the exception to raise."""
    done, path = history.get("step", start), None
    if not is_main():
        return TrainingInterrupted(done, history, None)     # rank 0 saves and says it
    if checkpoints is None:
        said = "nothing was saved (no checkpoints= given), but G, D and the history hold that step"
    elif done == start:
        said = f"no step finished in this call, so nothing new was saved in {checkpoints.folder}"
    else:
        path = save()[0]
        said = (f"saved {path}; to go on, run the same cell again (with RESUME = True) or the same command with "
                f"--resume")
    print(f"training stopped by Ctrl-C at step {done}: {said}.", file=sys.stderr, flush=True)
    return TrainingInterrupted(done, history, path)


def _last_good(checkpoints, step: int, rollback: bool) -> tuple[dict | None, str]:
    """The newest checkpoint to go back to after the loss turned NaN/inf at ``step`` (resume()'s choice when
    rolling back, else last.pt), or None when it is missing, unreadable, not from before ``step`` or already
    holds NaN/inf weights; and a sentence saying which."""
    if checkpoints is None:
        return None, ""
    folder = checkpoints.folder
    try:
        state = checkpoints.resume() if rollback else load_checkpoint(folder / "last.pt")
    except FileNotFoundError:
        state = None
    except CheckpointError as error:
        return None, f" There is no good checkpoint to go back to: {error}"
    if state is None:
        return None, f" There is no checkpoint to go back to: none was saved in {folder} before step {step}."
    saved = state.get("step", -1)
    if saved >= step:
        return None, (f" There is no good checkpoint to go back to: the one in {folder} is of step {saved}, not "
                      f"from before step {step} (another run in the same folder saved it).")
    bad = [f"{part}.{name}" for part in ("G", "D") for name, value in state.get(part, {}).items()
           if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all()]
    if bad:
        return None, (f" There is no good checkpoint to go back to: the one in {folder} (step {saved}) already "
                      f"holds NaN/inf weights ({', '.join(bad[:3])}), so start again after the fix.")
    return state, f" Nothing NaN was saved: the last checkpoint in {folder} (step {saved}) is still good."


def _diverged(why: str, step: int, watch: Watch, checkpoints, G, D, opt_g, opt_d, extras) -> dict:
    """Stop with ``TrainingDiverged`` (saying whether a good checkpoint is there), or put the last good checkpoint
    back (``on_nan="rollback"``) and return its history."""
    state, where = _last_good(checkpoints, step, watch.on_nan == "rollback")
    if state is None or watch.on_nan != "rollback":
        raise TrainingDiverged(why + where)
    restored = restore_training_state(state, G, D, opt_g, opt_d, extras=extras)
    history = restored["history"]
    history.setdefault("warnings", []).append([restored["step"], why])
    warnings.warn(f"{why} Rolled back to the checkpoint of step {restored['step']}: G, D, the optimisers and "
                  f"the random state are as they were then; change the cause before training on.", stacklevel=3)
    return history


def make_ema(G, decay: float = 0.999) -> AveragedModel:
    """An exponential moving average of G's weights (and batch-norm buffers), ``torch.optim.swa_utils`` style:
    after each step ``ema = decay * ema + (1 - decay) * G``. Sample from ``ema.module``; pass it as ``train(ema=)``."""
    if not 0.0 < decay < 1.0:
        raise ValueError(f"decay={decay}: an EMA decay lies strictly between 0 and 1 (0.999 is usual).")
    return AveragedModel(G, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


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
