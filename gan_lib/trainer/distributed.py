"""Several GPUs training one GAN together: PyTorch's DistributedDataParallel (DDP), launched by ``torchrun``.

    torchrun --nproc_per_node 2 -m gan_lib.trainer --recipe dcgan --data faces/ --out runs/dcgan --steps 12000

``torchrun`` starts one process (a *rank*) per GPU and tells each its ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``
through the environment. ``setup()`` reads them, joins the process group (NCCL on GPUs, gloo on CPUs) and returns
this rank's device. Every rank holds a full copy of G and D (``wrap``) and trains on its own slice of each batch
(``ImageBatches(rank=, world_size=)``); in backward DDP *averages* the gradients over the ranks, so every copy
takes the same optimiser step. The losses are means over the batch, so N ranks with B/N images each take the step
one process takes with B images: the run is the same, only faster. ``train`` hands its callbacks the plain models
(``unwrap``) and keeps D's gradients local during G's update (``no_sync``: they are thrown away); ``Checkpoints``,
``Grids`` and ``Evaluate`` write and score on rank 0 only (``is_main()``), as does the progress bar, and a checkpoint
holds the plain models, so one made by N processes loads in one and the other way round.

Batch norm: under DDP each rank would normalise with the statistics of its own B/N images. On CUDA ``wrap`` turns
batch-norm layers into ``SyncBatchNorm``, whose statistics cover all B images, as in one process. SyncBatchNorm
has no CPU implementation, so on CPUs (gloo, used for tests) batch norm stays per rank: the run then differs a
little from a one-process run, and the running averages used in eval mode are rank 0's (DDP copies buffers from
rank 0 at each forward).
"""
from __future__ import annotations

import contextlib
import os
import warnings

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def rank() -> int:
    """This process's rank, 0 when not distributed."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """How many processes train together, 1 when not distributed."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one rank that writes files and prints progress."""
    return rank() == 0


def torchrun_ranks() -> tuple[int, int]:
    """``(WORLD_SIZE, LOCAL_RANK)`` as ``torchrun`` sets them; ``(1, 0)`` in a plain process."""
    return int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_RANK", "0"))


def setup(device: str | None = None) -> torch.device:
    """Join the process group that ``torchrun`` describes in the environment and return this rank's device.

    Without torchrun (no ``WORLD_SIZE``, or 1) nothing is joined and the device is ``device`` or the best one
    (``pick_device``). With several GPUs, rank r uses GPU ``LOCAL_RANK`` and NCCL; without CUDA, the CPU and gloo.
    """
    from gan_lib.runtime import pick_device

    size, local = torchrun_ranks()
    if size <= 1:
        return pick_device(device)
    use_cuda = torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda")
    if use_cuda and local >= torch.cuda.device_count():
        raise RuntimeError(f"torchrun started {size} processes but this machine has {torch.cuda.device_count()} "
                           f"GPU(s): use --nproc_per_node {torch.cuda.device_count()}.")
    if use_cuda:
        torch.cuda.set_device(local)
    where = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return where


def cleanup() -> None:
    """Leave the process group (at the end of a run); nothing when not distributed."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def wrap(model: nn.Module, device) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel (its batch norm synced on CUDA), or unchanged in one process.

    Train the wrapper (``train(wrap(G, device), wrap(D, device), ...)``); the optimisers keep ``model``'s
    parameters, which the wrapper shares. DDP copies rank 0's weights to every rank when it wraps."""
    if world_size() == 1:
        return model
    device = torch.device(device)
    if has_batch_norm(model):
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)   # shares the weights and running statistics
        elif is_main():
            warnings.warn(f"{type(model).__name__} has batch norm and SyncBatchNorm needs CUDA: on the CPU each of "
                          f"the {world_size()} ranks normalises with its own share of the batch.", stacklevel=2)
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a DDP wrapper (what is saved, sampled and averaged), else ``model`` itself."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def no_sync(model: nn.Module):
    """DDP's ``no_sync()``: backward keeps ``model``'s gradients local (no averaging); a no-op for a plain model.
    ``train`` uses it for D during G's update, whose gradient on D is thrown away."""
    return model.no_sync() if isinstance(model, DistributedDataParallel) else contextlib.nullcontext()


@contextlib.contextmanager
def main_first():
    """Rank 0 runs the block first (a download, a cache), then the other ranks: ``with main_first(): load(...)``."""
    if not is_main():
        dist.barrier()
    try:
        yield
    finally:
        if is_main() and world_size() > 1:
            dist.barrier()
