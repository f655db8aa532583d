"""gan_lib: the small helper library behind the GAN course kit.

Each module holds one concern; lessons import what they need:

    runtime   smoke mode, device choice, seeding
    data      data sets scaled to [-1, 1], with offline fallbacks
    losses    GAN losses behind one interface (non-saturating BCE, with label smoothing)
    train     the one training loop lessons 02+ share
    metrics   numbers that say how good a generator is
    plots     the figures the lessons show
    lessons   run a lesson notebook headless (benchmarks, tests, demos); clean notebooks
"""
from gan_lib.runtime import by_mode, pick_device, seed_everything, smoke_mode

__all__ = ["by_mode", "pick_device", "seed_everything", "smoke_mode"]
__version__ = "0.1.0"
