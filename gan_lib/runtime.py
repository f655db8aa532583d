"""Smoke mode, device, seeding and where a lesson runs (Colab, Kaggle, local): what every lesson sets first.

    device, steps = pick_device(), by_mode(full=6000, smoke=30, cpu=3000)   # cpu: full mode without a GPU
    print(describe_runtime(device))                 # runtime: Colab | device: cuda (Tesla T4, 15 GB) | ...
"""
from __future__ import annotations

import importlib.util
import os
import random

import numpy as np
import torch

SMOKE_ENV = "GAN_LIB_SMOKE"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def smoke_mode() -> bool:
    """True when ``GAN_LIB_SMOKE`` asks for a quick CPU run (tiny data, few steps); the kit's one reader of it."""
    value = os.environ.get(SMOKE_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{SMOKE_ENV}={os.environ[SMOKE_ENV]!r} is not understood: set it to 1 for a quick smoke run "
                     f"or 0 (or unset it) for the full lesson.")


_SAME = object()


def cpu_budget() -> bool:
    """True in full mode without a CUDA GPU: lessons 03-05 then train for about 30 minutes on 2 CPU cores."""
    return not smoke_mode() and not torch.cuda.is_available()


def by_mode(full, smoke, cpu=_SAME):
    """``smoke`` in smoke mode, ``cpu`` (when given) in full mode without a CUDA GPU, else ``full``:
    ``steps = by_mode(full=6000, smoke=12, cpu=3000)``."""
    if smoke_mode():
        return smoke
    return cpu if cpu is not _SAME and cpu_budget() else full


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA, else Apple's MPS, else the CPU; ``prefer`` (a device string, e.g. "cpu" for tiny models) overrides it."""
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and GPUs); return a ``torch.Generator`` seeded the same way. A CPU run
    then repeats bit for bit (same PyTorch and thread count); GPU kernels may not."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def torchrun_ranks() -> tuple[int, int]:
    """``(WORLD_SIZE, LOCAL_RANK)`` as ``torchrun`` sets them; ``(1, 0)`` in a plain process."""
    return int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_RANK", "0"))


def runtime_name() -> str:
    """Where the notebook runs: "Colab", "Kaggle" or "local"."""
    try:
        if importlib.util.find_spec("google.colab") is not None:
            return "Colab"
    except ModuleNotFoundError:              # no "google" package at all
        pass
    if os.environ.get("KAGGLE_KERNEL_RUN_TYPE") or os.path.isdir("/kaggle/input"):
        return "Kaggle"
    return "local"


def describe_runtime(device: torch.device | str, needs_gpu: bool = True) -> str:
    """A lesson's first output, ``runtime: Colab | device: cuda (Tesla T4, 15 GB) | torch 2.5.1 | smoke mode: off``,
    with a warning when a lesson that ``needs_gpu`` runs in full mode on a CPU."""
    device = torch.device(device)
    what = str(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        what += f" ({props.name}, {props.total_memory / 2**30:.0f} GB)"
    line = f"runtime: {runtime_name()} | device: {what} | torch {torch.__version__} | smoke mode: " \
           f"{'on' if smoke_mode() else 'off'}"
    if needs_gpu and cpu_budget():
        line += ("\nCPU budget: no GPU, so the settings marked cpu= are used (about 30 min of training on 2 cores; "
                 "see the README's table). For the full settings: Colab Runtime > Change runtime type > T4 GPU, "
                 "or Kaggle Settings > Accelerator > GPU.")
    return line


def storage_folder(name: str, drive: bool = False) -> str:
    """Where a lesson keeps its outputs: ``MyDrive/gan-course-kit/<name>`` on Colab with ``drive=True`` (mounted
    on first use), ``/kaggle/working/<name>`` on Kaggle, else ``runs/<name>``."""
    where = runtime_name()
    if drive and where == "Colab":
        from google.colab import drive as colab_drive  # only importable on Colab
        if not os.path.isdir("/content/drive/MyDrive"):
            colab_drive.mount("/content/drive")
        return f"/content/drive/MyDrive/gan-course-kit/{name}"
    if where == "Kaggle":
        return f"/kaggle/working/{name}"
    return f"runs/{name}"
