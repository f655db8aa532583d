"""W1 and the 1-D summary, checked against values known in closed form and against SciPy on samples."""
import numpy as np
import pytest
import torch
from scipy import stats

from gan_lib.eval.metrics import summarize_1d, w1_to_normal


def test_w1_of_the_exact_quantiles_is_zero():
    n = 10_000
    q = stats.norm.ppf((np.arange(n) + 0.5) / n, loc=4, scale=1.25)
    assert w1_to_normal(q, 4, 1.25) < 1e-9


def test_w1_of_a_shift_is_the_shift():
    n = 10_000
    q = stats.norm.ppf((np.arange(n) + 0.5) / n, loc=4, scale=1.25)
    assert w1_to_normal(q + 0.3, 4, 1.25) == pytest.approx(0.3, abs=1e-9)


def test_w1_of_a_rescale_matches_the_closed_form():
    # W1(N(m, s1), N(m, s2)) = |s1 - s2| * E|Z| = |s1 - s2| * sqrt(2/pi)
    x = np.random.default_rng(0).normal(4, 2.0, 200_000)
    assert w1_to_normal(x, 4, 1.25) == pytest.approx(0.75 * np.sqrt(2 / np.pi), abs=0.01)


def test_w1_agrees_with_scipy_on_samples():
    rng = np.random.default_rng(1)
    x = rng.uniform(2, 6, 5_000)
    reference = stats.wasserstein_distance(x, rng.normal(4, 1.25, 400_000))
    assert w1_to_normal(torch.tensor(x), 4, 1.25) == pytest.approx(reference, abs=0.01)


def test_summary_and_clear_errors():
    s = summarize_1d(torch.tensor([3.0, 5.0]), 4, 1.25)
    assert s["mean"] == pytest.approx(4.0) and s["std"] == pytest.approx(np.sqrt(2))
    with pytest.raises(ValueError, match="NaN or infinite"):
        w1_to_normal([1.0, float("nan")], 4, 1.25)
    with pytest.raises(ValueError, match="no samples"):
        w1_to_normal([], 4, 1.25)
