"""Mode coverage for lesson 02: the shipped digit classifier and the coverage report."""
import numpy as np
import pytest
import torch

from gan_lib.data import load_mnist_subset, to_unit_range
from gan_lib.eval.digits import DigitClassifier, digit_coverage, load_digit_classifier
from gan_lib.eval.metrics import frechet_distance


@pytest.fixture(scope="module")
def digits():
    images, labels = load_mnist_subset()
    return to_unit_range(images).unsqueeze(1), labels           # (2000, 1, 28, 28), (2000,)


def test_shipped_classifier_is_accurate_on_digits_it_never_saw(digits):
    images, labels = digits
    with torch.no_grad():
        accuracy = (load_digit_classifier()(images).argmax(1) == labels).float().mean().item()
    assert accuracy > 0.95


def test_real_digits_cover_every_class_and_a_collapsed_set_does_not(digits):
    images, labels = digits
    clf = load_digit_classifier()
    mixed = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:1000]]  # file is class-sorted
    real = digit_coverage(mixed, clf, real=images)
    assert real["covered"] == 10 and max(real["fractions"]) < 0.2
    ones = images[labels == 1][:200].repeat(5, 1, 1, 1)          # a generator that only draws ones
    collapsed = digit_coverage(ones, clf, real=images)
    assert collapsed["covered"] <= 2 and max(collapsed["fractions"]) > 0.9
    assert collapsed["fd"] > 10 * collapsed["fd_real_vs_real"]
    assert collapsed["fd_real_vs_real"] == pytest.approx(real["fd_real_vs_real"])


def test_frechet_distance_agrees_with_pytorch_fid():
    fid = pytest.importorskip("pytorch_fid.fid_score")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(500, 6)), rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) + 0.5
    expected = fid.calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_broken_classifier_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "clf.pt"
    bad.write_text("version https://git-lfs.github.com/spec/v1\n")   # what a missing Git LFS object looks like
    with pytest.raises(ValueError, match="not a digit-classifier checkpoint"):
        load_digit_classifier(bad)
    with pytest.raises(FileNotFoundError, match="make_classifier.py"):
        load_digit_classifier(tmp_path / "missing.pt")
    torch.save(DigitClassifier().state_dict(), tmp_path / "ok.pt")
    assert isinstance(load_digit_classifier(tmp_path / "ok.pt"), DigitClassifier)
