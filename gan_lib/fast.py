"""The fast path: uint8 images held on the device, batches cut and normalised there, and the GPU switches that
help a DCGAN (cudnn autotuning, TF32, fused Adam, mixed precision, compile).

    batches = ImageBatches(faces.images_uint8, batch_size=128, device=device, flip=True, seed=0)
    precision = configure_device(device)            # "fp16" on a T4; "fp32" (TF32) on an A100/L4/H100 or a CPU
    run = train(G, D, opt_g, opt_d, batches, loss, noise, until, options=Options(precision=precision))
"""
from __future__ import annotations

import warnings

import torch

from gan_lib.data import to_unit_range

PRECISIONS = ("fp32", "bf16", "fp16")


class ImageBatches:
    """Endless shuffled batches (B, C, H, W) in [-1, 1] cut on ``device`` from uint8 (or already scaled) images.

    The order depends only on (seed, epoch, position), which ``state_dict()`` saves: a resumed run gets the same
    batches. ``flip`` mirrors a random half of each batch; ``drop_last`` skips an epoch's partial last batch.
    Images over half the GPU's free memory stay in pinned CPU memory. Under DDP each rank takes its ``batch_size``
    slice of every step's ``world_size * batch_size`` rows of one permutation: a checkpoint moves between 1 and N.
    """

    def __init__(self, images: torch.Tensor, batch_size: int, device="cpu", flip: bool = False, seed: int = 0,
                 drop_last: bool = True, channels_last: bool = False, rank: int = 0, world_size: int = 1):
        per_rank, ranks = (f" on each of {world_size} ranks", f" / {world_size}") if world_size > 1 else ("", "")
        if len(images) == 0 or batch_size < 1 or (drop_last and batch_size * world_size > len(images)):
            raise ValueError(f"{len(images)} images and batch_size={batch_size}{per_rank}: need at least one image "
                             f"and a batch_size between 1 and the number of images{ranks}.")
        if not 0 <= rank < world_size or (world_size > 1 and not drop_last):
            raise ValueError(f"rank={rank}, world_size={world_size}, drop_last={drop_last}: need 0 <= rank < "
                             f"world_size, and drop_last=True with several ranks (every rank needs a full batch).")
        self.rank, self.world_size = rank, world_size
        self.device, self.batch_size, self.flip, self.seed = torch.device(device), batch_size, flip, seed
        self.drop_last, self.channels_last = drop_last, channels_last and images.dim() == 4
        self.images = self._place(images)
        self.epoch, self.position, self._order, self._flips = 0, 0, None, None

    def _place(self, images: torch.Tensor) -> torch.Tensor:
        """The images on the device if they take under half its free memory, else in pinned CPU memory."""
        size = images.numel() * images.element_size()
        free = torch.cuda.mem_get_info(self.device)[0] if self.device.type == "cuda" else None
        if free is None or size < free // 2:
            return images.to(self.device)
        warnings.warn(f"{size / 1e9:.1f} GB of images do not fit in half of the GPU's free {free / 1e9:.1f} GB: "
                      f"they stay in CPU memory and each batch is copied.")
        return images.pin_memory()

    def __len__(self) -> int:
        """Batches per epoch (per rank; every rank takes the same number)."""
        n, rows = len(self.images), self.batch_size * self.world_size
        return n // rows if self.drop_last else -(-n // rows)

    def __iter__(self):
        return self

    def __next__(self) -> torch.Tensor:
        step_rows = self.batch_size * self.world_size                               # rows all ranks take
        if self.position >= (len(self) * step_rows if self.drop_last else len(self.images)):
            self.epoch, self.position, self._order = self.epoch + 1, 0, None
        if self._order is None:                                                     # drawn from (seed, epoch) alone
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            self._order = torch.randperm(len(self.images), generator=gen)          # (N,)
            self._flips = torch.rand(len(self.images), generator=gen) < 0.5         # (N,) one coin per image
        first = self.position + self.rank * self.batch_size                         # this rank's slice
        rows = self._order[first:first + self.batch_size]                           # (B,)
        self.position += step_rows
        batch = self.images[rows.to(self.images.device)].to(self.device, non_blocking=True)   # (B, C, H, W)
        if batch.dtype == torch.uint8:
            batch = to_unit_range(batch)                                            # uint8 -> float in [-1, 1]
        if self.flip:
            flips = self._flips[rows].to(self.device).view(-1, *[1] * (batch.dim() - 1))   # (B, 1, 1, 1)
            batch = torch.where(flips, batch.flip(-1), batch)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch

    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.seed, self.epoch, self.position, self._order = state["seed"], state["epoch"], state["position"], None


def choose_precision(device, precision: str = "auto") -> str:
    """``"auto"``: fp16 on GPUs older than Ampere (Colab's T4), else fp32 (TF32 on Ampere and newer, where bf16
    measured slower for a DCGAN: README, "Speed"). Name "bf16" or "fp16" to use them anyway."""
    device = torch.device(device)
    if precision == "auto":
        return "fp16" if device.type == "cuda" and torch.cuda.get_device_capability(device)[0] < 8 else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: choose 'auto', {', '.join(map(repr, PRECISIONS))}.")
    return precision


def configure_device(device, precision: str = "auto") -> str:
    """Switch on cudnn autotuning and TF32 on a GPU; return the precision to train in (``choose_precision``)."""
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = True          # time each conv's algorithms once, keep the fastest
        torch.backends.cuda.matmul.allow_tf32 = True   # TF32 for the fp32 matrix products that remain
        torch.backends.cudnn.allow_tf32 = True
    return choose_precision(device, precision)


def adam(params, device, lr: float = 2e-4, betas=(0.5, 0.999)) -> torch.optim.Adam:
    """Adam with DCGAN's defaults; one fused kernel per step on a GPU (``fused=True``) instead of one per tensor."""
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=torch.device(device).type == "cuda")


def compile_models(*models, double_backward: bool = False):
    """``torch.compile`` each model, or return them eager (with a warning) where that is not possible, e.g. under a
    gradient penalty (``double_backward``), which compiled graphs do not support on some PyTorch versions."""
    if double_backward:
        warnings.warn("torch.compile skipped: the gradient penalty needs double backward, which compiled "
                      "graphs do not support on some PyTorch versions.")
        return models
    try:
        return tuple(torch.compile(m) for m in models)
    except Exception as err:  # noqa: BLE001 - e.g. no compiler toolchain on this machine, or Python too new
        warnings.warn(f"torch.compile is not available here ({type(err).__name__}: {err}); training eagerly.")
        return models


def eager_again(err: Exception, eager_models):
    """After a compiled model's first step failed: warn in one line and return the eager models to train with."""
    said = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
    warnings.warn(f"torch.compile failed at the first step ({type(err).__name__}: {said}); training eagerly.")
    return eager_models
