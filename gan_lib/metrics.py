"""Numbers that say how close a generator is to its target."""
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
    """1-D Wasserstein distance W1 between ``samples`` and the normal N(mean, std**2).

    W1 = integral over u in (0, 1) of |F_G^-1(u) - F^-1(u)|: the average distance each sample
    must move. The target is represented exactly by its quantiles at (i + 0.5) / n, so the
    result has no sampling noise from the target side.
    """
    x = _as_numpy_1d(samples)
    n = x.size
    target_quantiles = stats.norm.ppf((np.arange(n) + 0.5) / n, loc=mean, scale=std)
    return float(stats.wasserstein_distance(x, target_quantiles))


def summarize_1d(samples, mean: float, std: float) -> dict:
    """Mean, standard deviation and W1 of 1-D samples against N(mean, std**2)."""
    x = _as_numpy_1d(samples)
    return {
        "mean": float(x.mean()),
        "std": float(x.std(ddof=1)) if x.size > 1 else 0.0,
        "w1": w1_to_normal(x, mean, std),
    }


def frechet_distance(features_a, features_b) -> float:
    """Fréchet distance between Gaussians fitted to two sets of feature vectors (N, d) and (M, d):

        FD = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))

    This is FID's formula; lesson 02 applies it to an MNIST classifier's features, lesson 04 to
    Inception's. The matrix square root is scipy's ``linalg.sqrtm``.
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
