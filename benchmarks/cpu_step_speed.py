"""How close a CPU training step of lesson 03's DCGAN gets to the machine's arithmetic limit, and which settings help.

    python benchmarks/cpu_step_speed.py            # 5 rounds of 20 steps per contender (about 6 min on 2 idle cores)
    python benchmarks/cpu_step_speed.py --quick    # 2 steps, 1 round, no torch.compile: a smoke check

The recipe is ``gan_lib.recipes.build("dcgan", "cpu", width=32, batch=64)`` (BCE, Adam 2e-4 (0.5, 0.999)), fed by
``ImageBatches`` (flip=True) and trained by ``gan_lib.train.train`` with the recipe's EMA callback (half-life 10,000
images, updated after every step), exactly as lesson 03 calls it. The arithmetic of ONE such step (D on real +
fake, G through D) is counted with ``torch.utils.flop_counter`` and each contender's images/s becomes GFLOP/s,
printed beside the rate of a 2048 x 2048 fp32 matrix product measured in every round of the same run
(``evaluation_speed.matmul_gflops``, 2 threads): the ratio says how near the step gets to what the CPU's BLAS does.

Contenders take turns (round-robin, every other round reversed, after warm-up steps); the median round counts.
"error" is how far a contender's gradients (those of G's update, into G and D, in one step from the same weights,
data and noise) are from the same step computed in float64: ||g - g_fp64|| / ||g_fp64||. The default's own error is
the yardstick (fp32 rounding, amplified by batch norm in the first layers); a setting is "exact" when its error is
of that size. "different maths" where a contender changes the batch or what batch norm sees (no same step to compare).
"""
from __future__ import annotations

import argparse
import statistics
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from evaluation_speed import FACES, matmul_gflops
from gan_lib.data import ImageBatches
from gan_lib.io.image_files import FaceFolder
from gan_lib.callbacks import EMA
from gan_lib.losses import GANLoss
from gan_lib.recipes import build
from gan_lib.runtime import configure_device
from gan_lib.train import Options, train
from training_speed import reference_steps

THREADS = torch.get_num_threads()


def counted_flops(run) -> int:
    """The floating-point operations ``run()`` does (multiply-adds x 2), counted by torch.utils.flop_counter."""
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


class JointD(GANLoss):
    """A loss with D's real and fake passes fused into one forward over the joint batch (2B): fewer, larger convs,
    but D's batch norm then normalises real and fake with statistics of both together, a different D."""

    def __init__(self, loss):
        self.loss = loss

    def discriminator_loss(self, D, real, fake, scale=1.0):
        halves = iter(D(torch.cat([real, fake])).chunk(2))                 # (B, 1) real, then (B, 1) fake
        return self.loss.discriminator_loss(lambda x: next(halves), real, fake, scale)

    def generator_loss(self, D, fake):
        return self.loss.generator_loss(D, fake)


@contextmanager
def cpu_settings(threads=None, mkldnn=True, onednn_bf16=False, matmul_precision=None, flush_denormal=False):
    """Thread count and oneDNN switches for one contender's steps, put back afterwards."""
    saved = (torch.get_num_threads(), torch.backends.mkldnn.enabled, torch.backends.mkldnn.conv.fp32_precision,
             torch.backends.mkldnn.matmul.fp32_precision, torch.get_float32_matmul_precision())
    torch.set_num_threads(threads or THREADS)
    torch.set_flush_denormal(flush_denormal)      # values under 1.2e-38 become 0 (no slow denormal arithmetic)
    torch.backends.mkldnn.enabled = mkldnn
    if onednn_bf16:     # oneDNN may compute fp32 convs and matmuls in bf16 (CPUs with avx512_bf16 / AMX)
        torch.backends.mkldnn.conv.fp32_precision = torch.backends.mkldnn.matmul.fp32_precision = "bf16"
    if matmul_precision:
        torch.set_float32_matmul_precision(matmul_precision)
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        torch.set_flush_denormal(False)
        torch.backends.mkldnn.enabled = saved[1]
        torch.backends.mkldnn.conv.fp32_precision, torch.backends.mkldnn.matmul.fp32_precision = saved[2:4]
        torch.set_float32_matmul_precision(saved[4])


class Contender:
    """Lesson 03's recipe trained one way: ``run(steps)`` continues its own run, ``rates`` collects images/s.

    ``bare=True`` replaces ``train`` by the PyTorch tutorial's hand-written step (``training_speed.reference_steps``)
    plus the same EMA update; ``settings`` go to ``cpu_settings``; the rest to ``train`` or ``ImageBatches``."""

    def __init__(self, name, faces, batch=64, width=32, channels_last=False, compile=False, precision="auto",
                 fused_d=False, bare=False, same_maths=True, dtype=torch.float32, **settings):
        self.name, self.batch, self.compile, self.bare, self.settings = name, batch, compile, bare, settings
        self.same_maths = same_maths and batch == 64 and not fused_d
        self.faces, self.width, self.channels_last = faces, width, channels_last
        self.precision = configure_device("cpu", precision)                # as lesson 03: "fp32" on a CPU
        self.fused_d, self.dtype, self.rates, self.state = fused_d, dtype, [], None
        self.reset(seed=0)

    def reset(self, seed: int) -> None:
        """Fresh models, optimisers, EMA and batches from ``seed`` (the same for every contender)."""
        torch.manual_seed(seed)
        self.recipe = r = build("dcgan", "cpu", width=self.width, batch=self.batch)
        if self.channels_last is True:                                      # "batches": only the batches
            r.G, r.D = (m.to(memory_format=torch.channels_last) for m in (r.G, r.D))
        self.batches = ImageBatches(self.faces, self.batch, seed=seed, flip=True,
                                    channels_last=bool(self.channels_last))
        if self.dtype != torch.float32:                                      # the float64 yardstick
            r.G, r.D = r.G.to(self.dtype), r.D.to(self.dtype)
            r.opt_g, r.opt_d = (type(o)(m.parameters(), **o.defaults) for o, m in ((r.opt_g, r.G), (r.opt_d, r.D)))
            noise, r.noise = r.noise, lambda n: noise(n).to(self.dtype)      # (n, 100, 1, 1)
            self.batches = (b.to(self.dtype) for b in self.batches)         # (B, 3, 64, 64)
        self.ema = EMA(r.G, r.ema.decay)                  # the recipe's EMA, of G as this contender holds it
        self.loss = JointD(r.loss) if self.fused_d else r.loss
        self.state = None                                 # the Run: each call goes on where the last one stopped

    def run(self, steps: int) -> None:
        r = self.recipe
        with cpu_settings(**self.settings):
            if self.bare:
                for _ in range(steps):
                    reference_steps(r.G, r.D, r.opt_g, r.opt_d, self.batches, 1, "cpu")
                    self.ema.model.update_parameters(r.G)
            else:
                until = (self.state.step if self.state else 0) + steps      # until is the total: `steps` more
                self.state = train(r.G, r.D, r.opt_g, r.opt_d, self.batches, self.loss, r.noise, until,
                                   options=Options(precision=self.precision, compile=self.compile, progress=False),
                                   callbacks=[self.ema], run=self.state)

    def timed(self, steps: int) -> float:
        started = time.perf_counter()
        self.run(steps)
        self.rates.append(steps * self.batch / (time.perf_counter() - started))
        return self.rates[-1]

    def gradients(self) -> torch.Tensor:
        """G's and D's gradients of the G update of one step from seed 1's start, as one vector."""
        self.reset(seed=1)
        torch.manual_seed(2)                                                    # the same noise for everyone
        self.run(1)
        return torch.cat([p.grad.flatten() for m in (self.recipe.G, self.recipe.D) for p in m.parameters()])


def contenders(faces, quick: bool) -> list[Contender]:
    """Every setting tried; the first is the default (lesson 03 on a CPU as it stands)."""
    made = [Contender("default (lesson 03: train, NCHW, fp32)", faces),
            Contender("bare hand-written step (+EMA)", faces, bare=True),
            Contender("channels_last models + batches", faces, channels_last=True),
            Contender("channels_last batches only (models NCHW)", faces, channels_last="batches"),
            Contender("threads 1 (of 2 cores)", faces, threads=1),
            Contender("flush denormals", faces, flush_denormal=True),
            Contender("oneDNN off (mkldnn.enabled=False)", faces, mkldnn=False),
            Contender("oneDNN fp32_precision=bf16 (conv+mm)", faces, onednn_bf16=True),
            Contender("float32_matmul_precision=medium", faces, matmul_precision="medium"),
            Contender("autocast bf16 (train precision=bf16)", faces, precision="bf16"),
            Contender("D real+fake fused (joint batch norm)", faces, fused_d=True),
            Contender("batch 32", faces, batch=32),
            Contender("batch 128", faces, batch=128)]
    if not quick:
        made.insert(4, Contender("torch.compile (inductor CPU)", faces, compile=True))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per contender per round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=2048, help="real faces to train on (decoded once)")
    parser.add_argument("--interop", type=int, default=0, help="torch.set_interop_threads for the whole run")
    parser.add_argument("--quick", action="store_true", help="2 steps, 1 round, no torch.compile: a smoke check")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.warmup, args.rounds = 2, 1, 1
    if args.interop:     # only possible before any parallel work starts, so once per process
        torch.set_interop_threads(args.interop)
    if FACES.is_dir():
        faces = FaceFolder(FACES, size=64, limit=args.n).images_uint8               # (n, 3, 64, 64) uint8
        data = f"{len(faces):,} real faces from {FACES}"
    else:
        faces = torch.randint(0, 256, (args.n, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        data = f"{args.n:,} SYNTHETIC uint8 tensors ({FACES} is missing)"
    print(f"torch {torch.__version__}; {THREADS} threads, {torch.get_num_interop_threads()} interop threads; "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}, native bf16 (AVX512-BF16) "
          f"{torch.cpu._is_avx512_bf16_supported()}; data: {data}")
    runs = contenders(faces, args.quick)
    default = runs[0]
    flops = counted_flops(lambda: default.run(1))
    gflop_image = flops / default.batch / 1e9
    print(f"one training step (D on real + fake, G through D; batch {default.batch}): {flops / 1e9:.2f} GFLOP, "
          f"{gflop_image:.3f} GFLOP per image (torch.utils.flop_counter; the EMA update is not arithmetic it counts)")

    failed = []
    for c in runs:
        try:
            c.run(args.warmup)
        except Exception as err:  # noqa: BLE001 - a setting this machine cannot run is reported, not fatal
            print(f"{c.name}: cannot run here ({type(err).__name__}: {str(err).strip().splitlines()[0][:200]})")
            failed.append(c)
    runs = [c for c in runs if c not in failed]
    peaks = []
    for r in range(args.rounds):    # every other round in reverse order, so that no contender always goes first
        peaks.append(matmul_gflops())
        for c in runs if r % 2 == 0 else runs[::-1]:
            c.timed(args.steps)
        print(f"round {r + 1}: matmul {peaks[-1]:.0f} GFLOP/s; "
              + ", ".join(f"{c.name.split(' (')[0]} {c.rates[-1]:.0f}" for c in runs) + " images/s", flush=True)
    peak = statistics.median(peaks)

    reference = Contender("float64", faces, dtype=torch.float64).gradients()
    print(f"\nfp32 matmul 2048^2 ({THREADS} threads), median of {len(peaks)} rounds: {peak:.1f} GFLOP/s; "
          f"{args.rounds} rounds x {args.steps} steps, median round:")
    print(f"{'contender':42s} {'images/s':>9s} {'GFLOP/s':>8s} {'/matmul':>8s} {'/default':>9s} {'error':>9s}")
    base = statistics.median(default.rates)
    for c in runs:
        rate = statistics.median(c.rates)
        error = (f"{float((c.gradients().double() - reference).norm() / reference.norm()):9.1e}" if c.same_maths
                 else "different maths")
        print(f"{c.name:42s} {rate:9.1f} {rate * gflop_image:8.1f} {rate * gflop_image / peak:8.1%} "
              f"{rate / base:9.3f} {error}")


if __name__ == "__main__":
    main()
