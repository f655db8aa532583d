"""What every lesson sets first: smoke mode, the device and its precision, seeding, where it runs.

    device, steps = pick_device(), by_mode(full=6000, smoke=30, cpu=3000)   # cpu: full mode without a GPU
    print(describe_runtime(device))                 # runtime: Colab | device: cuda (Tesla T4, 15 GB) | ...
    precision = configure_device(device)            # "fp16" on a T4; "fp32" (TF32) on an A100/L4/H100 or a CPU
"""
import importlib.util
import os
import random
import warnings

import numpy as np
import torch

SMOKE_ENV = "GAN_LIB_SMOKE"
_SAME = object()


def smoke_mode() -> bool:
    """True when ``GAN_LIB_SMOKE`` asks for a quick CPU run (tiny data, few steps); the kit's one reader of it."""
    value = os.environ.get(SMOKE_ENV, "").strip().lower()
    if value not in ("1", "true", "yes", "on", "", "0", "false", "no", "off"):
        raise ValueError(f"{SMOKE_ENV}={os.environ[SMOKE_ENV]!r} is not understood: use 1 (smoke run) or 0 (full run).")
    return value in ("1", "true", "yes", "on")


def cpu_budget() -> bool:
    """True in full mode without a CUDA GPU: lessons 03-05 then train for about 30 minutes on 2 CPU cores."""
    return not smoke_mode() and not torch.cuda.is_available()


def by_mode(full, smoke, cpu=_SAME):
    """``smoke`` in smoke mode, ``cpu`` (when given) in full mode without a CUDA GPU, else ``full``."""
    return smoke if smoke_mode() else cpu if cpu is not _SAME and cpu_budget() else full


def pick_device(prefer: str | None = None) -> torch.device:
    """``prefer`` (e.g. "cpu" for tiny models), else CUDA, else Apple's MPS, else the CPU."""
    return torch.device(prefer or ("cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available()
                                   else "cpu"))


def choose_precision(device, precision: str = "auto") -> str:
    """``"auto"``: fp16 before Ampere (Colab's T4), else fp32 (TF32; bf16 was slower: README, "Speed")."""
    device = torch.device(device)
    if precision == "auto":
        return "fp16" if device.type == "cuda" and torch.cuda.get_device_capability(device)[0] < 8 else "fp32"
    if precision not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"precision={precision!r}: choose 'auto', 'fp32', 'bf16' or 'fp16'.")
    if precision == "bf16" and device.type == "cpu" and not torch.cpu._is_avx512_bf16_supported():
        warnings.warn("bf16 ran 15x slower than fp32 on a CPU like this (no AVX512-BF16; cpu_step_speed.txt): use fp32")
    return precision


def configure_device(device, precision: str = "auto") -> str:
    """Switch on cudnn autotuning and TF32 on a GPU; return the precision to train in (``choose_precision``)."""
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = True          # time each conv's algorithms once, keep the fastest
        torch.backends.cuda.matmul.allow_tf32 = True   # TF32 for the fp32 matrix products that remain
        torch.backends.cudnn.allow_tf32 = True
    return choose_precision(device, precision)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and GPUs); return a ``torch.Generator`` seeded alike."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def runtime_name() -> str:
    """Where the notebook runs: "Colab", "Kaggle" or "local"."""
    if importlib.util.find_spec("google") and importlib.util.find_spec("google.colab"):
        return "Colab"
    return "Kaggle" if os.environ.get("KAGGLE_KERNEL_RUN_TYPE") or os.path.isdir("/kaggle/input") else "local"


def describe_runtime(device: torch.device | str, needs_gpu: bool = True) -> str:
    """A lesson's first line (where, device, torch, smoke mode); a warning if a ``needs_gpu`` lesson has no GPU."""
    device = torch.device(device)
    what = str(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        what += f" ({props.name}, {props.total_memory / 2**30:.0f} GB)"
    line = f"runtime: {runtime_name()} | device: {what} | torch {torch.__version__}"
    line += f" | smoke mode: {'on' if smoke_mode() else 'off'}"
    if needs_gpu and cpu_budget():
        line += ("\nCPU budget: no GPU, so the settings marked cpu= are used (30 min on 2 cores, README's table); "
                 "for the full ones: Colab Runtime > Change runtime type > T4, or Kaggle Settings > Accelerator > GPU.")
    return line


def storage_folder(name: str, drive: bool = False) -> str:
    """A lesson's output folder: on Drive (Colab, ``drive=True``), in /kaggle/working (Kaggle), else in runs/."""
    where = runtime_name()
    if drive and where == "Colab":
        from google.colab import drive as colab_drive  # only importable on Colab
        if not os.path.isdir("/content/drive/MyDrive"):
            colab_drive.mount("/content/drive")
        return f"/content/drive/MyDrive/gan-course-kit/{name}"
    return f"/kaggle/working/{name}" if where == "Kaggle" else f"runs/{name}"
