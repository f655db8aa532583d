"""The lessons' data, scaled to [-1, 1] (a tanh generator's range), and the batches cut from it.

    mnist, source = load_mnist("data", limit=N_DIGITS)              # a TensorDataset of (image (1, 28, 28), label)
    faces, source = load_faces(DATA_DIR, size=64, limit=N_IMAGES)   # a Dataset of (3, 64, 64) in [-1, 1]
    batches = ImageBatches(faces.images_uint8, batch_size=128, device=device, flip=True, seed=0)
"""
import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from gan_lib.io import downloads

MNIST_ASSETS = Path(__file__).resolve().parent / "assets" / "mnist"   # package data: in the wheel too
MNIST_SUBSET = MNIST_ASSETS / "mnist-2k.npz"
MNIST_SUBSET_SHA256 = "d15ad8c59ee070810f8a88af868757044aaeef01ec93749985c88302f7386b9c"
KNOWN_FACE_FOLDERS = (Path("/kaggle/input/animefacedataset/images"), downloads.SHARED_DATA / "anime-faces-64")


def to_unit_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 pixels in [0, 255] -> float32 in [-1, 1]."""
    return images_uint8.float().div(127.5).sub(1.0)


def load_mnist_subset(path: Path = MNIST_SUBSET) -> tuple[torch.Tensor, torch.Tensor]:
    """The 2,000-digit offline subset shipped with gan_lib (CC BY-SA 3.0): uint8 images (N, 28, 28), labels (N,)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall the kit, or go online to download MNIST.")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MNIST_SUBSET_SHA256:
        raise ValueError(f"{path} is damaged (not the sha256 shipped): reinstall the kit, or `git checkout -- {path}`.")
    with np.load(path) as data:
        return torch.from_numpy(data["images"]), torch.from_numpy(data["labels"]).long()


def load_mnist(root: str | Path = "data", download: bool = True, limit: int | None = None):
    """MNIST's digits (torchvision's, else the offline subset), (image (1, 28, 28) in [-1, 1], label), and a source."""
    try:
        from torchvision.datasets import MNIST
        mnist = MNIST(str(root), train=True, download=download)
        images, labels = mnist.data, mnist.targets
        source = f"torchvision MNIST, {len(images):,} training digits (in {root})"
    except (RuntimeError, OSError) as err:  # no network, or not downloaded and download=False
        images, labels = load_mnist_subset()
        source = (f"offline subset shipped with gan_lib, {len(images):,} real digits, 200 per class "
                  f"(torchvision MNIST unavailable: {downloads.one_line(err)})")
    if limit is not None:                                    # an order whose every prefix holds each class alike
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
        one_hot = torch.nn.functional.one_hot(labels[order].long())                  # (N, classes), shuffled
        rank = (one_hot.cumsum(0) * one_hot).sum(1)          # the digit's place among those of its class
        keep = order[torch.argsort(rank * one_hot.shape[1] + labels[order])][:limit]  # the first of each class first
        images, labels = images[keep], labels[keep]
    return TensorDataset(to_unit_range(images).unsqueeze(1), labels), source     # images (N, 1, 28, 28) in [-1, 1]


class FaceTensor(Dataset):
    """Faces held in memory as uint8 (N, 3, H, W); item i is image i as float32 (3, H, W) in [-1, 1]."""

    def __init__(self, images_uint8: torch.Tensor, source: str):
        self.images_uint8, self.source = images_uint8, source

    def __len__(self) -> int:
        return len(self.images_uint8)

    def __getitem__(self, i: int) -> torch.Tensor:
        return to_unit_range(self.images_uint8[i])  # (3, H, W) uint8 -> float in [-1, 1]


def load_faces(path: str | Path | None = None, size: int = 64, limit: int | None = None,
               download_to: str | Path | None = None, allow_download: bool = True):
    """Faces (3, size, size) in [-1, 1] from ``path``, a known folder, a download or synthetic ones, and a source."""
    from gan_lib.io.image_files import FaceFolder, _fetch_hw6, _fetch_kaggle   # image_files imports this module
    from gan_lib.io.synthetic_faces import cartoon_faces
    if path is not None:
        ds = FaceFolder(path, size, limit=limit)
        return ds, f"your folder: {ds.source}"
    for known in KNOWN_FACE_FOLDERS:
        if known.is_dir():
            ds = FaceFolder(known, size, limit=limit)
            return ds, f"found on this machine: {ds.source}"
    reasons = []
    if not allow_download or not downloads.network_reachable():
        reasons.append("no network" if allow_download else "downloads are off (allow_download=False)")
    else:
        for name, fetch in (("Kaggle splcher/animefacedataset", _fetch_kaggle), ("NTU HW6 faces", _fetch_hw6)):
            try:
                ds = FaceFolder(fetch(Path(download_to or "data")), size, limit=limit)
                return ds, f"{name}: {ds.source}" + (f" ({reasons[0]})" if reasons else "")
            except Exception as err:  # an optional source failed: say why and try the next
                reasons.append(f"{name} unavailable: {downloads.one_line(err)}")
    n = 2000 if limit is None else min(2000, limit)
    ds = FaceTensor(cartoon_faces(n, size, seed=0), f"{n:,} synthetic cartoon faces at {size}x{size}")
    return ds, f"offline fallback: {ds.source} from gan_lib.io.synthetic_faces ({'; '.join(reasons)})"


def infinite(loader: Iterable) -> Iterator:
    """Cycle through a DataLoader (or any iterable) forever, yielding the images (a tuple's first part)."""
    while True:
        batch = None                                         # stays None when the loader yields nothing
        for batch in loader:
            yield batch[0] if isinstance(batch, (tuple, list)) else batch
        if batch is None:
            raise ValueError("the data loader yielded no batch: is the data set empty, or smaller than one batch?")


class ImageBatches(Iterator):
    """Endless shuffled full batches (B, C, H, W) in [-1, 1] on ``device``, resumable; each DDP rank takes a slice."""

    def __init__(self, images: torch.Tensor, batch_size: int, device="cpu", flip: bool = False, seed: int = 0,
                 channels_last: bool = False, rank: int = 0, world_size: int = 1):
        per_rank, ranks = (f" on each of {world_size} ranks", f" / {world_size}") if world_size > 1 else ("", "")
        if batch_size < 1 or batch_size * world_size > len(images):
            raise ValueError(f"{len(images)} images and batch_size={batch_size}{per_rank}: need at least one image "
                             f"and a batch_size between 1 and the number of images{ranks}.")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank={rank}, world_size={world_size}: need 0 <= rank < world_size.")
        self.rank, self.world_size = rank, world_size
        self.device, self.batch_size, self.flip, self.seed = torch.device(device), batch_size, flip, seed
        self.channels_last = channels_last and images.dim() == 4
        self.images = images.to(self.device)                                        # (N, C, H, W), decoded once
        self.epoch, self.position, self._order, self._flips = 0, 0, None, None

    def __len__(self) -> int:                                                       # batches per epoch, on each rank
        return len(self.images) // (self.batch_size * self.world_size)

    def __next__(self) -> torch.Tensor:
        step_rows = self.batch_size * self.world_size                               # rows all ranks take
        if self.position >= len(self) * step_rows:                                  # a new epoch, a new order
            self.epoch, self.position, self._order = self.epoch + 1, 0, None
        if self._order is None:                                                     # drawn from (seed, epoch) alone
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            self._order = torch.randperm(len(self.images), generator=gen)          # (N,)
            self._flips = torch.rand(len(self.images), generator=gen) < 0.5         # (N,) one coin per image
        first = self.position + self.rank * self.batch_size                         # this rank's slice
        rows = self._order[first:first + self.batch_size]                           # (B,)
        self.position += step_rows
        batch = self.images[rows.to(self.device)]                                   # (B, C, H, W)
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
