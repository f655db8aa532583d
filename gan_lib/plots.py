"""The figures the lessons show. Each function returns the matplotlib Figure it drew."""
from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np


def _finish(fig, title: str | None):
    if title:
        fig.suptitle(title)
    return fig


def plot_curves(history: Mapping[str, Sequence[float]], panels: Mapping[str, Sequence[str]],
                refs: Mapping[str, Sequence[float]] | None = None, smooth: int = 1, title: str | None = None,
                xs: Sequence[float] | None = None):
    """One panel per ``panels`` entry, e.g. {"losses": ["loss_d", "loss_g"]}, dashed ``refs``, ``smooth``-step means."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False, layout="tight")
    for ax, (name, keys) in zip(axes[0], panels.items()):
        for key in keys:
            if key not in history:
                raise KeyError(f"history has no curve {key!r}; it has {sorted(history)}.")
            y = np.asarray(history[key], dtype=float)
            if 1 < smooth <= len(y):
                y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")          # a moving average
            x = np.arange(len(history[key])) if xs is None else np.asarray(xs)
            ax.plot(x[len(x) - len(y):], y, label=key, lw=1.2)                      # x of each window's end
        for value in (refs or {}).get(name, ()):
            ax.axhline(value, color="k", ls="--", lw=0.8)
        ax.set(title=name, xlabel="step")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _finish(fig, title)


def plot_density_snapshots(snapshots: Mapping[int | str, np.ndarray], target_pdf: Callable[[np.ndarray], np.ndarray],
                           x_range: tuple[float, float], title: str | None = None):
    """Histograms of generated 1-D samples over the target density, one panel per key ("step N" for an int)."""
    xs = np.linspace(*x_range, 400)
    fig, axes = plt.subplots(1, len(snapshots), figsize=(3.0 * len(snapshots), 2.8), squeeze=False, layout="tight")
    for ax, (key, samples) in zip(axes[0], snapshots.items()):
        samples = np.asarray(samples).reshape(-1)
        ax.hist(samples, bins=60, range=x_range, density=True, alpha=0.6, color="tab:orange", label="G(z)")
        ax.plot(xs, target_pdf(xs), "k", lw=1.5, label="target")
        name = f"step {key}" if isinstance(key, int) else str(key)
        ax.set_title(f"{name}: mean {samples.mean():.2f}, std {samples.std():.2f}", fontsize=9)
        ax.set_xlim(*x_range)
    axes[0][0].legend(fontsize=8)
    return _finish(fig, title)


def show_images(images, nrow: int = 8, title: str | None = None, ax=None, size: float = 4.0):
    """Show the first ``nrow**2`` images of a (B, C, H, W) batch in [-1, 1] as one grid, on ``ax`` or a new figure."""
    from torchvision.utils import make_grid

    if ax is None:
        fig, ax = plt.subplots(figsize=(size, size))
    grid = make_grid(images.detach().float().cpu()[:nrow * nrow], nrow=nrow, normalize=True, value_range=(-1, 1),
                     pad_value=1.0)                                   # (3, H', W') in [0, 1]
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=10)
    return ax.figure


def kept_grids(samples) -> list:
    """The fixed-noise grids, [(step, images)], of a ``gan_lib.callbacks.Grids`` callback (or such a list itself)."""
    samples = list(getattr(samples, "samples", samples))
    if not samples:
        raise ValueError("no fixed-noise grids were kept: train with a Grids(fixed_noise, every=...) callback first.")
    return samples


def plot_progress_strip(samples, nrow: int = 4, title: str | None = None):
    """Up to 8 grids of a ``Grids`` callback (or its ``.samples``) side by side, evenly spaced, the last included."""
    samples = kept_grids(samples)
    picks = np.unique(np.linspace(0, len(samples) - 1, min(8, len(samples))).round().astype(int))
    fig, axes = plt.subplots(1, len(picks), figsize=(2.0 * len(picks), 2.3), squeeze=False, layout="tight")
    for ax, (step, images) in zip(axes[0], [samples[i] for i in picks]):
        show_images(images, nrow=nrow, title=f"step {step}", ax=ax)
    return _finish(fig, title)


def plot_class_histogram(fractions: Mapping[str, Sequence[float]], title: str | None = None):
    """Bars of each class's share (0-9), one colour per entry; the green band is where a well-covering G stays."""
    fig, ax = plt.subplots(figsize=(6.5, 2.8), layout="tight")
    width = 0.8 / len(fractions)
    for i, (name, shares) in enumerate(fractions.items()):
        ax.bar(np.arange(len(shares)) + (i - (len(fractions) - 1) / 2) * width, shares, width, label=name)
    ax.axhspan(0.04, 0.16, color="green", alpha=0.08, label="4%-16%")
    ax.set(xticks=range(len(shares)), xlabel="class predicted by the digit classifier", ylabel="share of samples")
    ax.legend(fontsize=8)
    return _finish(fig, title)


def plot_grad_norms(histories: Mapping[str, Mapping], skip: int = 0, title: str | None = None):
    """The critic's per-layer gradient norms by depth, mean over the steps after ``skip``, one line per history."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4), layout="tight")
    for name, history in histories.items():
        norms = np.asarray(history["grad_norms_d"][skip:], dtype=float)     # (steps, layers)
        if norms.size == 0:
            raise ValueError(f"{name}: no gradient norms recorded; train with record_grad_norms=True.")
        ax.plot(np.arange(1, norms.shape[1] + 1), norms.mean(0), marker="o", label=name)
    ax.set(yscale="log", xticks=np.arange(1, norms.shape[1] + 1), xlabel="critic layer (1 = input side)",
           ylabel="gradient norm")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return _finish(fig, title)
