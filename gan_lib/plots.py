"""The figures the lessons show. Each function returns the matplotlib Figure it drew."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np


def _moving_average(y: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(y) < window:
        return y
    kernel = np.ones(window) / window
    return np.convolve(y, kernel, mode="valid")


def plot_curves(
    history: Mapping[str, Sequence[float]],
    panels: Mapping[str, Sequence[str]],
    refs: Mapping[str, Sequence[float]] | None = None,
    smooth: int = 1,
    title: str | None = None,
    xlabel: str = "step",
):
    """One panel per entry of ``panels``: ``{"losses": ["loss_d", "loss_g"], ...}``.

    ``refs`` draws dashed horizontal reference lines per panel (e.g. the target mean);
    ``smooth`` is a moving-average window that makes noisy per-step curves readable.
    """
    refs = refs or {}
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, (name, keys) in zip(axes[0], panels.items()):
        for key in keys:
            if key not in history:
                raise KeyError(f"history has no curve {key!r}; it has {sorted(history)}.")
            y = _moving_average(np.asarray(history[key], dtype=float), smooth)
            x = np.arange(len(y)) + (len(history[key]) - len(y))
            ax.plot(x, y, label=key, lw=1.2)
        for value in refs.get(name, ()):
            ax.axhline(value, color="k", ls="--", lw=0.8)
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_density_snapshots(
    snapshots: Mapping[int | str, np.ndarray],
    target_pdf: Callable[[np.ndarray], np.ndarray],
    x_range: tuple[float, float],
    bins: int = 60,
    title: str | None = None,
):
    """Histograms of generated 1-D samples, each over the target density.

    Keys are training steps (titled "step N") or any label (e.g. a model's name).
    """
    xs = np.linspace(*x_range, 400)
    fig, axes = plt.subplots(1, len(snapshots), figsize=(3.0 * len(snapshots), 2.8), sharey=True, squeeze=False)
    for ax, (key, samples) in zip(axes[0], snapshots.items()):
        samples = np.asarray(samples).reshape(-1)
        ax.hist(samples, bins=bins, range=x_range, density=True, alpha=0.6, color="tab:orange", label="G(z)")
        ax.plot(xs, target_pdf(xs), "k", lw=1.5, label="target")
        name = f"step {key}" if isinstance(key, int) else str(key)
        ax.set_title(f"{name}: mean {samples.mean():.2f}, std {samples.std():.2f}", fontsize=9)
        ax.set_xlim(*x_range)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
