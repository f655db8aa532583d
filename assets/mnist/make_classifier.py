"""Make gan_lib/assets/mnist/digit-classifier.pt (package data, shipped in the wheel): the small CNN that lesson 02 uses to label generated digits.

Trained on the 3,000 digits of the 5,000-digit MNIST subset (../shared/data/mnist-5k.npz, see make_subset.py)
that are NOT in the offline subset mnist-2k.npz, and tested on those 2,000, so the printed accuracy is on
digits the classifier never saw. Weights are stored as float16 (about 210 KiB).

    python assets/mnist/make_classifier.py [path/to/mnist-5k.npz]
"""
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

from gan_lib.data import load_mnist_subset, to_unit_range
from gan_lib.eval.digits import CLASSIFIER_WEIGHTS, train_digit_classifier

HERE = Path(__file__).resolve().parent


def main(source: Path) -> None:
    data = np.load(source)
    images, labels = torch.from_numpy(data["images"]), torch.from_numpy(data["labels"]).long()
    test_x, test_y = load_mnist_subset()
    in_subset = {bytes(img.numpy().tobytes()) for img in test_x}
    train = torch.tensor([bytes(img.numpy().tobytes()) not in in_subset for img in images])
    x = to_unit_range(images[train]).unsqueeze(1)                         # (3000, 1, 28, 28)
    model = train_digit_classifier(x, labels[train], epochs=8, seed=0)
    with torch.no_grad():
        accuracy = (model(to_unit_range(test_x).unsqueeze(1)).argmax(1) == test_y).float().mean().item()
    torch.save({k: v.half() for k, v in model.state_dict().items()}, CLASSIFIER_WEIGHTS)
    digest = hashlib.sha256(CLASSIFIER_WEIGHTS.read_bytes()).hexdigest()
    print(f"trained on {int(train.sum())} digits; accuracy on the 2,000 held-out offline digits: {accuracy:.2%}")
    print(f"wrote {CLASSIFIER_WEIGHTS} ({CLASSIFIER_WEIGHTS.stat().st_size / 1024:.0f} KiB), sha256 {digest}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[1].parent / "shared" / "data" / "mnist-5k.npz")
