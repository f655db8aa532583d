"""Data sets for the lessons, each scaled to [-1, 1] (the range of a tanh generator).

    mnist, source = load_mnist("data", limit=N_DIGITS)     # a TensorDataset of (image (1, 28, 28), label)
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

MNIST_ASSETS = Path(__file__).resolve().parent / "assets" / "mnist"   # package data: in the wheel too
MNIST_SUBSET = MNIST_ASSETS / "mnist-2k.npz"
MNIST_SUBSET_SHA256 = "d15ad8c59ee070810f8a88af868757044aaeef01ec93749985c88302f7386b9c"


def to_unit_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 pixels in [0, 255] -> float32 in [-1, 1]."""
    return images_uint8.float().div(127.5).sub(1.0)


def load_mnist_subset(path: Path = MNIST_SUBSET) -> tuple[torch.Tensor, torch.Tensor]:
    """The 2,000-digit offline subset shipped with gan_lib (CC BY-SA 3.0): uint8 images (N, 28, 28), labels (N,)."""
    if not path.is_file():
        raise FileNotFoundError(f"the offline MNIST subset {path} is missing: reinstall the kit (`pip install "
                                f"--force-reinstall`) or give the notebook internet access to download MNIST.")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MNIST_SUBSET_SHA256:
        raise ValueError(f"{path} is damaged (sha256 {digest[:12]}…, expected {MNIST_SUBSET_SHA256[:12]}…): "
                         f"reinstall the kit, or in a clone restore it with `git checkout -- {path}`.")
    with np.load(path) as data:
        return torch.from_numpy(data["images"]), torch.from_numpy(data["labels"]).long()


def every_class_first(labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """labels (N,) -> indices (N,) ordered so that any prefix holds every class about equally (shuffled by ``seed``)."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    rank = torch.empty(len(labels), dtype=torch.long)             # the digit's place among those of its class
    for c in labels.unique():
        members = order[labels[order] == c]
        rank[members] = torch.arange(len(members))
    return torch.argsort(rank * (int(labels.max()) + 1) + labels.long())


def load_mnist(root: str | Path = "data", download: bool = True, limit: int | None = None):
    """MNIST's training digits as a TensorDataset of (image (1, 28, 28) in [-1, 1], label), and a line naming the
    source: torchvision's MNIST (downloaded into ``root``), else the offline subset. ``limit`` keeps that many
    digits, class by class (even 50 hold all ten classes)."""
    try:
        from torchvision.datasets import MNIST
        mnist = MNIST(str(root), train=True, download=download)
        images, labels = mnist.data, mnist.targets
        source = f"torchvision MNIST, {len(images):,} training digits (in {root})"
    except (RuntimeError, OSError) as err:  # no network, or not downloaded and download=False
        images, labels = load_mnist_subset()
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        source = (f"offline subset shipped with gan_lib, {len(images):,} real digits, 200 per class "
                  f"(torchvision MNIST unavailable: {reason})")
    if limit is not None:
        keep = every_class_first(labels)[:limit]
        images, labels = images[keep], labels[keep]
    x = to_unit_range(images).unsqueeze(1)  # (N, 28, 28) uint8 -> (N, 1, 28, 28) float in [-1, 1]
    return TensorDataset(x, labels), source


class FaceTensor(Dataset):
    """Faces held in memory as uint8 (N, 3, H, W); item i is image i as float32 (3, H, W) in [-1, 1]."""

    def __init__(self, images_uint8: torch.Tensor, source: str):
        self.images_uint8, self.source = images_uint8, source
        self.skipped: list[tuple[Path, str]] = []

    def __len__(self) -> int:
        return len(self.images_uint8)

    def __getitem__(self, i: int) -> torch.Tensor:
        return to_unit_range(self.images_uint8[i])  # (3, H, W) uint8 -> float in [-1, 1]


def infinite(loader: Iterable) -> Iterator:
    """Cycle through a DataLoader (or any iterable) forever, yielding the images (the first part of a tuple)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch[0] if isinstance(batch, (tuple, list)) else batch
        if empty:
            raise ValueError("the data loader yielded no batch: is the data set empty, or batch_size > "
                             "its size with drop_last=True?")
