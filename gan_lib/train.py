"""The training loop that lessons 02-05, the benchmarks and the trainer share (lesson 01 writes it by hand).

    run = train(G, D, opt_g, opt_d, batches, NonSaturatingLoss(), noise, until=5000,
                callbacks=[EMA(G, ema_decay(10_000, batch=64)), Checkpoints("runs/dcgan", every=500)])
"""
import contextlib
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import torch
from tqdm.auto import tqdm

from gan_lib.runtime import choose_precision
from gan_lib.trainer.distributed import is_main, no_sync, unwrap


@dataclass
class Options:
    """How one step is computed (the loss, the data and the models are ``train``'s arguments)."""
    d_steps: int = 1                   # D updates per step (WGAN's critic: 5)
    g_steps: int = 1                   # G updates per step
    grad_clip: float | None = None     # clip D's and G's gradient norm to this; None: no clipping
    precision: str = "fp32"            # "fp32", "bf16", "fp16" (autocast + GradScaler), "auto": choose_precision
    compile: bool = False              # torch.compile G and D (skipped under a gradient penalty)
    record_grad_norms: bool = False    # keep D's per-layer gradient norms in run.history["grad_norms_d"]
    progress: bool = True              # a tqdm progress bar (rank 0 only)

    def __post_init__(self):
        if self.d_steps < 1 or self.g_steps < 1 or (self.grad_clip is not None and not self.grad_clip > 0):
            raise ValueError(f"d_steps={self.d_steps}, g_steps={self.g_steps}, grad_clip={self.grad_clip}: the "
                             f"step counts must be >= 1 and grad_clip > 0 (or None).")


@dataclass
class Run:
    """What a run has done so far: everything ``Checkpoints`` saves besides the weights and optimisers."""
    step: int = 0                                        # steps finished
    seconds: float = 0.0                                 # time spent training (saves and evaluations left out)
    history: dict = field(default_factory=lambda: defaultdict(list))   # per-step numbers: "loss_d", "D(x)", ...
    evals: list = field(default_factory=list)            # [{"step": 500, "kid_mean": 0.02, ...}]
    warnings: list = field(default_factory=list)         # [[step, text]] said by Watch
    fp16_skipped: int = 0                                # steps whose update the GradScaler skipped (inf/NaN)
    scaler: dict = field(default_factory=dict)           # the GradScaler's state (fp16); {} otherwise
    callbacks: dict = field(default_factory=dict)        # each callback's state_dict(), by callback name
    results: dict = field(default_factory=dict)          # scores of the trained run (Checkpoints.remember), by name
    resumed_from: int | None = None                      # the step Checkpoints loaded this session (not saved)

    def state_dict(self) -> dict:
        return {"step": self.step, "seconds": self.seconds, "history": {k: list(v) for k, v in self.history.items()},
                "evals": self.evals, "warnings": self.warnings, "fp16_skipped": self.fp16_skipped,
                "scaler": self.scaler, "callbacks": self.callbacks, "results": self.results}

    def load_state_dict(self, state: dict) -> None:
        self.__init__(**{**state, "history": defaultdict(list, state["history"])})


class Callback:
    """Something done around the steps: override what you need. Callbacks run sorted by ``order`` (Watch first,
    Checkpoints last); ``on_start`` in reverse, so Checkpoints restores the run before the others see it."""
    order = 0

    @property
    def name(self) -> str:                             # the key of this callback's state in run.callbacks
        return type(self).__name__

    def on_start(self, loop: "Loop") -> None: ...
    def on_step(self, loop: "Loop") -> None: ...       # after every step; set loop.stop = "why" to end the call
    def on_end(self, loop: "Loop") -> None: ...        # also after Ctrl-C (not after an exception)
    def state_dict(self) -> dict: return {}            # kept in run.callbacks (and so in every checkpoint)
    def load_state_dict(self, state: dict) -> None: ...


def stateful(callbacks) -> list:
    """The callbacks that keep a state (those that override ``state_dict``)."""
    return [cb for cb in callbacks if type(cb).state_dict is not Callback.state_dict]


@dataclass
class Loop:
    """What the callbacks see: the models (plain, not DDP-wrapped), the run and the last step's tensors."""
    G: torch.nn.Module
    D: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    batches: Iterator
    loss: object
    noise: Callable
    options: Options
    run: Run
    callbacks: list
    scaler: torch.amp.GradScaler
    until: int | None
    device: torch.device | None = None                 # where G and D live
    dtype: torch.dtype | None = None                   # autocast's dtype; None: fp32
    fake: torch.Tensor | None = None                   # (B, ...) the last G update's batch
    reals: list = field(default_factory=list)          # (B, ...) each real batch of the step, for D's updates
    numbers: dict = field(default_factory=dict)        # this step's losses and stats as floats
    grad_norms: list | None = None                     # D's per-layer gradient norms (Options.record_grad_norms)
    metrics: dict = field(default_factory=dict)        # this step's evaluation (set by Evaluate), else {}
    skipped: bool = False                              # the GradScaler skipped this step's update (fp16)
    stop: str | None = None                            # set by a callback: why this call ends early
    _clock: float = field(default_factory=time.perf_counter)

    def tick(self) -> None:
        """Add the time since the last tick to run.seconds."""
        now = time.perf_counter()
        self.run.seconds += now - self._clock
        self._clock = now

    @contextlib.contextmanager
    def paused(self):
        """Time spent inside (a save, an evaluation) is not training time."""
        self.tick()
        try:
            yield
        finally:
            self._clock = time.perf_counter()

    def find(self, kind: type):
        """The first callback of type ``kind``, or None."""
        return next((cb for cb in self.callbacks if isinstance(cb, kind)), None)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped ``train``: ``run`` holds the last finished step; ``path`` is the checkpoint saved then."""

    def __init__(self, loop: Loop):
        from gan_lib.checkpoints import interrupted
        self.run, self.path = loop.run, interrupted(loop)
        super().__init__(f"training stopped by Ctrl-C at step {self.run.step}")


def train(G, D, opt_g, opt_d, batches: Iterator[torch.Tensor], loss, noise: Callable[[int], torch.Tensor],
          until: int | None, *, options: Options | None = None, callbacks: Iterable[Callback] = (),
          run: Run | None = None) -> Run:
    """Train G and D until ``run.step == until`` (None: until a callback stops it) and return the ``Run``.

    G, D           the models, on their device (DDP-wrapped for several GPUs)
    opt_g, opt_d   their optimisers
    batches        yields real image batches (``ImageBatches``, or ``infinite(loader)``)
    loss           a ``gan_lib.losses.GANLoss``
    noise          noise(n) -> n latent vectors
    until          the step to reach, the run's total (loaded at step 3,000, it trains 2,000 more); None: until a
                   callback (``Budget``) stops it
    options        how a step is computed; None: ``Options()``
    callbacks      ``gan_lib.callbacks`` objects; a ``Watch`` is added when none is given
    run            the ``Run`` to continue; None: a fresh one (or what ``Checkpoints`` loads)
    """
    from gan_lib.callbacks import Watch           # callbacks imports this module's Callback
    options, run = options or Options(), run if run is not None else Run()
    callbacks = list(callbacks)
    if not any(isinstance(cb, Watch) for cb in callbacks):
        callbacks.append(Watch())
    callbacks.sort(key=lambda cb: cb.order)
    wrapped, (G, D) = (G, D), (unwrap(G), unwrap(D))                  # DDP wrappers, and the plain models
    device = next(G.parameters()).device
    precision = choose_precision(device, options.precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    loop = Loop(G, D, opt_g, opt_d, batches, loss, noise, options, run, callbacks, scaler, until, device,
                {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision])

    # --- restore: a continued Run's callback states, or Checkpoints (last in order, first here) loads a saved run ---
    for cb in stateful(callbacks) if run.step else ():
        if cb.name in run.callbacks:
            cb.load_state_dict(run.callbacks[cb.name])
    for cb in reversed(callbacks):
        cb.on_start(loop)
    if run.scaler:
        scaler.load_state_dict(run.scaler)
    models = wrapped
    if options.compile and loss.double_backward:   # compiled graphs lack double backward on some torch versions
        warnings.warn("torch.compile skipped: the gradient penalty needs double backward.")
    elif options.compile:
        models = tuple(torch.compile(m) for m in wrapped)
    total = None if until is None else max(0, until - run.step)
    bar = tqdm(total=total, desc="training", unit="step", disable=not (options.progress and is_main()))
    loop._clock = time.perf_counter()
    try:
        while (until is None or run.step < until) and loop.stop is None:
            # --- one step: D updates, then G updates ---
            loop.skipped = training_step(loop, models)
            # --- record the step's numbers (none for an update the GradScaler skipped) ---
            run.step += 1
            run.results.clear()                        # scores of an earlier step no longer hold
            if loop.skipped:
                run.fp16_skipped += 1
            else:
                for key, value in loop.numbers.items():
                    run.history[key].append(value)
                if loop.grad_norms is not None:
                    run.history["grad_norms_d"].append(loop.grad_norms)
            # --- callbacks: watch, EMA, grids, evaluation, checkpoints, ... ---
            loop.metrics = {}
            for cb in callbacks:
                cb.on_step(loop)
            bar.update()
            if run.step % 50 == 0:
                bar.set_postfix(loss_d=f"{loop.numbers['loss_d']:.3f}", loss_g=f"{loop.numbers['loss_g']:.3f}")
    except KeyboardInterrupt:                          # Checkpoints saves the last finished step
        _finish(loop, bar)
        raise TrainingInterrupted(loop) from None
    _finish(loop, bar)
    return run


def training_step(loop: Loop, models) -> bool:
    """``d_steps`` D updates on new real and fake batches, then ``g_steps`` G updates; sets loop.fake, loop.real(s)
    and loop.numbers. True when the GradScaler skipped an update (fp16 inf/NaN)."""
    G_, D_ = models                                   # the models to call (DDP-wrapped or compiled)
    o, scaler, loss = loop.options, loop.scaler, loop.loss
    device, dtype = loop.device, loop.dtype
    autocast = lambda: torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)   # noqa: E731
    skipped, loop.reals = False, []
    loop.grad_norms = [] if o.record_grad_norms else None
    # D: learn to tell real from fake (G's output detached: no gradient into G)
    for i in range(o.d_steps):
        real = next(loop.batches).to(device)                              # (B, ...)
        loop.reals.append(real)
        with autocast():
            with torch.set_grad_enabled(i == o.d_steps - 1):              # the last fake is reused by G's update
                fake = G_(loop.noise(real.shape[0]).to(device))           # (B, ...)
            loss_d, stats_d = loss.discriminator_loss(D_, real, fake.detach(), scaler.get_scale()
                                                      if scaler.is_enabled() else 1.0)
        skipped |= _update(loop.D, loop.opt_d, loss_d, scaler, o.grad_clip, loop.grad_norms)
        loss.after_discriminator_step(loop.D)
    # G: learn to make D say "real" (D's gradient from this is thrown away, so DDP need not average it)
    for j in range(o.g_steps):
        with no_sync(D_), autocast():
            if j > 0:
                fake = G_(loop.noise(real.shape[0]).to(device))           # (B, ...)
            loss_g, stats_g = loss.generator_loss(D_, fake)
        skipped |= _update(loop.G, loop.opt_g, loss_g, scaler, o.grad_clip)
    # the figures of the last updates: one device-to-host copy per step, not one per number
    kept = {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), **stats_d, **stats_g}
    loop.numbers = dict(zip(kept, torch.stack([v.float() for v in kept.values()]).tolist()))
    loop.fake = fake.detach()
    return skipped


def _update(model, opt, loss_value, scaler, grad_clip, norms_into: list | None = None) -> bool:
    """One optimiser update (scaled in fp16; norms recorded and clipped on request). True when it was skipped."""
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss_value).backward()
    scaler.unscale_(opt)                               # the true gradients (fp16), before any clipping
    if norms_into is not None:                         # one per weight tensor, input side first; biases skipped
        norms = [p.grad.norm() for p in model.parameters() if p.grad is not None and p.dim() > 1]
        norms_into[:] = torch.stack(norms).tolist() if norms else []
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    before = scaler.get_scale()                        # 1.0 when the scaler is off (not fp16)
    scaler.step(opt)
    scaler.update()
    return scaler.get_scale() < before                 # fp16: the scale drops when the update was skipped


def _finish(loop: Loop, bar) -> None:
    """The end of a call: the bar closed, time and the GradScaler into the run, then each callback's on_end."""
    bar.close()
    loop.tick()
    loop.run.scaler = loop.scaler.state_dict() if loop.scaler.is_enabled() else {}
    loop.run.callbacks.update({cb.name: cb.state_dict() for cb in stateful(loop.callbacks)})
    for cb in reversed(loop.callbacks):               # Checkpoints first: saved even if a later one fails
        cb.on_end(loop)
