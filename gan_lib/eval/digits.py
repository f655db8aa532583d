"""Mode coverage for MNIST generators: a small digit classifier labels generated digits.

    clf = load_digit_classifier()
    report = digit_coverage(fake, clf, real=real)   # fake, real: (N, 1, 28, 28) in [-1, 1]
    report["covered"], report["fractions"], report["fd"], report["fd_real_vs_real"]

A generator that has collapsed onto a few digits shows it at once in the class histogram; the Fréchet
distance in the classifier's 64-d feature space (FID's formula, with a digit network instead of Inception)
also sees blurry or odd-looking digits. The weights ship in ``gan_lib/assets/mnist/digit-classifier.pt``, made by
``assets/mnist/make_classifier.py`` (trained on real digits that are not in the offline subset).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gan_lib.data import MNIST_ASSETS
from gan_lib.eval.metrics import frechet_distance

CLASSIFIER_WEIGHTS = MNIST_ASSETS / "digit-classifier.pt"   # package data: in the wheel too


class DigitClassifier(nn.Module):
    """(B, 1, 28, 28) in [-1, 1] -> 10 logits; ``features`` gives the 64-d layer before the last.

    The features are taken before the ReLU, so none is constantly zero and their covariance is full rank.
    """

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # (B, 16, 14, 14)
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # (B, 32, 7, 7)
            nn.Flatten(), nn.Linear(32 * 7 * 7, 64),                       # (B, 64) features
        )
        self.head = nn.Linear(64, 10)                                      # (B, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.body(x)))


def train_digit_classifier(images: torch.Tensor, labels: torch.Tensor, epochs: int = 8, seed: int = 0,
                           batch_size: int = 64) -> DigitClassifier:
    """Train a DigitClassifier on (N, 1, 28, 28) images in [-1, 1] (a few seconds on a CPU for 3,000 digits).

    Each batch is shifted by up to 2 pixels so the classifier does not depend on exact centring.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DigitClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        for i in range(0, len(images), batch_size):
            idx = order[i:i + batch_size]
            dx, dy = torch.randint(-2, 3, (2,), generator=gen).tolist()
            x = torch.roll(images[idx], shifts=(dy, dx), dims=(2, 3))      # (b, 1, 28, 28)
            loss = F.cross_entropy(model(x), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def load_digit_classifier(path: str | Path = CLASSIFIER_WEIGHTS) -> DigitClassifier:
    """The shipped classifier (97-98% accuracy on held-out real digits), loaded safely (``weights_only``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"the digit classifier {path} is missing: reinstall the kit (pip) or "
                                f"remake it with `python assets/mnist/make_classifier.py`.")
    model = DigitClassifier()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except Exception as err:  # truncated file, Git LFS pointer, foreign weights
        raise ValueError(f"{path} is not a digit-classifier checkpoint ({type(err).__name__}): restore it with "
                         f"`git checkout -- {path}` or remake it with assets/mnist/make_classifier.py.") from err
    return model.eval()


@torch.no_grad()
def _predict(clf: DigitClassifier, images: torch.Tensor, batch_size: int = 500):
    labels, feats = [], []
    for i in range(0, len(images), batch_size):
        f = clf.features(images[i:i + batch_size].float().cpu())           # (b, 64)
        feats.append(f)
        labels.append(clf.head(F.relu(f)).argmax(1))
    return torch.cat(labels), torch.cat(feats)


def digit_coverage(fake: torch.Tensor, clf: DigitClassifier, real: torch.Tensor | None = None,
                   min_fraction: float = 0.01) -> dict:
    """Class histogram and Fréchet distance of generated digits ``fake`` (N, 1, 28, 28) in [-1, 1].

    Returns ``counts`` and ``fractions`` (10 each), ``covered`` (classes holding at least ``min_fraction`` of
    the samples), ``predicted`` labels, and, given ``real`` digits, ``fd`` (fake vs real features) and
    ``fd_real_vs_real`` (two disjoint halves of ``real``: the value a perfect generator would get for this
    sample size; compare ``fd`` with it, not with 0).
    """
    predicted, feats = _predict(clf, fake)
    counts = torch.bincount(predicted, minlength=10)
    fractions = counts.float() / len(fake)
    report = {"n": len(fake), "counts": counts.tolist(), "fractions": fractions.tolist(),
              "covered": int((fractions >= min_fraction).sum()), "predicted": predicted}
    if real is not None:
        _, real_feats = _predict(clf, real)
        # data sets are often sorted by class: split the real digits at random (fixed seed) into two halves
        real_feats = real_feats[torch.randperm(len(real_feats), generator=torch.Generator().manual_seed(0))]
        half = len(real_feats) // 2                       # both figures compare against the same real half
        report["fd"] = frechet_distance(feats, real_feats[:half])
        report["fd_real_vs_real"] = frechet_distance(real_feats[half:2 * half], real_feats[:half])
    return report
