"""Smoke mode, device choice and seeding: the three switches every lesson sets first."""
from __future__ import annotations

import os
import random

import numpy as np
import torch

SMOKE_ENV = "GAN_LIB_SMOKE"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def smoke_mode() -> bool:
    """True when ``GAN_LIB_SMOKE`` asks for a quick CPU run (tiny data, few steps).

    This is the only place in the kit that reads the variable; notebooks ask this function.
    """
    value = os.environ.get(SMOKE_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{SMOKE_ENV}={os.environ[SMOKE_ENV]!r} is not understood: set it to 1 for a quick smoke run "
        f"or 0 (or unset it) for the full lesson."
    )


def by_mode(full, smoke):
    """Return ``smoke`` in smoke mode and ``full`` otherwise, e.g. ``steps = by_mode(6000, 300)``."""
    return smoke if smoke_mode() else full


def pick_device(prefer: str | None = None) -> torch.device:
    """The best device available: CUDA, then Apple's MPS, then the CPU.

    ``prefer="cpu"`` (or any device string) overrides the choice, e.g. for tiny models where
    a GPU only adds transfer overhead.
    """
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) so that a CPU run repeats exactly.

    Returns a fresh ``torch.Generator`` seeded the same way, for code that wants its own stream.
    GPU kernels may still be non-deterministic; the CPU is bit-for-bit repeatable for the same
    PyTorch version and thread count.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)
