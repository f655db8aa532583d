"""MNIST loading: torchvision when it can, the shipped real subset otherwise; always in [-1, 1]."""
import hashlib
from pathlib import Path

import pytest
import torch

from gan_lib import data


def test_offline_subset_is_balanced_real_mnist():
    images, labels = data.load_mnist_subset()
    assert images.shape == (2000, 28, 28) and images.dtype == torch.uint8
    assert torch.bincount(labels, minlength=10).tolist() == [200] * 10
    assert images.float().mean() > 20          # real strokes, not an empty array


def test_subset_matches_the_shared_copy_when_present():
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-5k.npz"
    if not shared.is_file():
        pytest.skip("../shared/data/mnist-5k.npz is not here")
    import numpy as np
    with np.load(shared) as full:
        sub, _ = data.load_mnist_subset()
        first_zero = full["images"][full["labels"] == 0][0]
        assert any(np.array_equal(first_zero, img) for img in sub.numpy()[:50])


def test_load_mnist_falls_back_offline_and_says_so(tmp_path):
    ds, source = data.load_mnist(root=tmp_path, download=False)
    x, y = ds.tensors
    assert x.shape == (2000, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert x.min() == -1 and x.max() == 1
    assert "offline subset" in source and "200 per class" in source
    assert len(data.load_mnist(root=tmp_path, download=False, limit=64)[0]) == 64


def test_damaged_or_missing_subset_is_a_clear_error(tmp_path):
    broken = tmp_path / "mnist-2k.npz"
    broken.write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="is damaged"):
        data.load_mnist_subset(broken)
    with pytest.raises(FileNotFoundError, match="is missing: reinstall the kit"):
        data.load_mnist_subset(tmp_path / "absent.npz")


def test_checksum_constant_matches_the_committed_file():
    assert hashlib.sha256(data.MNIST_SUBSET.read_bytes()).hexdigest() == data.MNIST_SUBSET_SHA256


def test_load_mnist_prefers_torchvision_when_it_works(monkeypatch, tmp_path):
    class FakeMNIST:
        def __init__(self, root, train, download):
            self.data = torch.full((5, 28, 28), 255, dtype=torch.uint8)
            self.targets = torch.arange(5)

    import torchvision.datasets
    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    ds, source = data.load_mnist(root=tmp_path)
    assert source.startswith("torchvision MNIST, 5 training digits")
    assert torch.all(ds.tensors[0] == 1.0)


@pytest.mark.parametrize("limit", [10, 50, 512])
def test_a_small_limit_samples_every_class(tmp_path, limit):
    """The subset file is sorted by class: its first 512 digits are 0s, 1s and 2s only."""
    ds, _ = data.load_mnist(root=tmp_path, download=False, limit=limit)
    counts = torch.bincount(ds.tensors[1], minlength=10)
    assert len(ds) == limit and counts.max() - counts.min() <= 1, counts.tolist()
    again, _ = data.load_mnist(root=tmp_path, download=False, limit=limit)
    assert torch.equal(ds.tensors[0], again.tensors[0])                            # the same digits every time
