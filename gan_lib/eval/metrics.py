"""Numbers that say how close a generator is to its target: lesson 01's 1-D summary (mean, std, W1 to the
normal target) and the Fréchet distance that ``digits`` applies to a digit classifier's features.

    summarize_1d(samples, mean=4.0, std=1.25)     # {"mean": ..., "std": ..., "w1": ...}
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import linalg, stats


def _as_numpy_1d(samples) -> np.ndarray:
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().cpu().numpy()
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("no samples were given: pass at least one generated value.")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise ValueError(f"{bad} of {x.size} samples are NaN or infinite: the generator has diverged.")
    return x


def w1_to_normal(samples, mean: float, std: float) -> float:
    """1-D Wasserstein distance W1 (the average distance each sample must move) between ``samples`` and
    N(mean, std**2), whose exact quantiles at (i + 0.5) / n stand for it: no sampling noise on that side."""
    x = _as_numpy_1d(samples)
    n = x.size
    target_quantiles = stats.norm.ppf((np.arange(n) + 0.5) / n, loc=mean, scale=std)
    return float(stats.wasserstein_distance(x, target_quantiles))


def summarize_1d(samples, mean: float, std: float) -> dict:
    """Mean, standard deviation and W1 of 1-D samples against N(mean, std**2)."""
    x = _as_numpy_1d(samples)
    std_dev = float(x.std(ddof=1)) if x.size > 1 else 0.0
    return {"mean": float(x.mean()), "std": std_dev, "w1": w1_to_normal(x, mean, std)}


def frechet_distance(features_a, features_b) -> float:
    """Fréchet distance between Gaussians fitted to two sets of feature vectors (N, d) and (M, d):

        FD = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))

    This is FID's formula (FID applies it to Inception's features); the matrix square root is scipy's ``linalg.sqrtm``.
    """
    a, b = (np.asarray(f.detach().cpu().double() if isinstance(f, torch.Tensor) else f, dtype=np.float64)
            for f in (features_a, features_b))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"features of shapes {a.shape} and {b.shape}: pass two (N, d) arrays with the same d "
                         f"and at least 2 rows each.")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():  # singular product: nudge both covariances (as pytorch-fid does)
        eps = np.eye(a.shape[1]) * 1e-6
        covmean = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))
