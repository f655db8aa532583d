"""Data sets for the lessons, each scaled to [-1, 1] (the range of a tanh generator)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

REPO_ROOT = Path(__file__).resolve().parents[1]
MNIST_SUBSET = REPO_ROOT / "assets" / "mnist" / "mnist-2k.npz"
MNIST_SUBSET_SHA256 = "d15ad8c59ee070810f8a88af868757044aaeef01ec93749985c88302f7386b9c"


def to_unit_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 pixels in [0, 255] -> float32 in [-1, 1]."""
    return images_uint8.float().div(127.5).sub(1.0)


def load_mnist_subset(path: Path = MNIST_SUBSET) -> tuple[torch.Tensor, torch.Tensor]:
    """The 2,000-digit offline subset shipped in assets/ (CC BY-SA 3.0): uint8 images (N, 28, 28), labels (N,)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"the offline MNIST subset {path} is missing: clone the whole repository (not only the package) "
            f"or give the notebook internet access so torchvision can download MNIST.")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MNIST_SUBSET_SHA256:
        raise ValueError(f"{path} is damaged (sha256 {digest[:12]}…, expected {MNIST_SUBSET_SHA256[:12]}…): "
                         f"restore it with `git checkout -- {path.name}`.")
    with np.load(path) as data:
        return torch.from_numpy(data["images"]), torch.from_numpy(data["labels"]).long()


def load_mnist(root: str | Path = "data", download: bool = True, limit: int | None = None):
    """MNIST training digits as a TensorDataset of (image (1, 28, 28) in [-1, 1], label), and a line naming
    the source.

    Tries torchvision's MNIST (downloaded into ``root`` and checked by torchvision's md5 sums); without a
    network it falls back to the 2,000-digit real subset shipped in ``assets/``. ``limit`` keeps the first
    ``limit`` digits (smoke mode).
    """
    try:
        from torchvision.datasets import MNIST
        mnist = MNIST(str(root), train=True, download=download)
        images, labels = mnist.data, mnist.targets
        source = f"torchvision MNIST, {len(images):,} training digits (in {root})"
    except (RuntimeError, OSError) as err:  # no network, or not downloaded and download=False
        images, labels = load_mnist_subset()
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        source = (f"offline subset from assets/, {len(images):,} real digits, 200 per class "
                  f"(torchvision MNIST unavailable: {reason})")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = to_unit_range(images).unsqueeze(1)  # (N, 28, 28) uint8 -> (N, 1, 28, 28) float in [-1, 1]
    return TensorDataset(x, labels), source
