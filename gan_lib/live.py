"""A live training view: loss curves and the latest fixed-noise grid, redrawn in one output area in place.

    with LiveView(every=100, total_steps=steps) as view:
        history = train(G, D, opt_g, opt_d, batches, loss, noise, steps, fixed_noise=z, sample_every=100,
                        on_step=view)

In a Jupyter kernel (Jupyter, Colab, Kaggle, nbclient/nbval) the first render opens one output with
``IPython.display.display(fig, display_id=True)`` and each later render replaces it (``handle.update``): no
widgets are needed, so it also survives nbconvert/HTML export as the last picture. Elsewhere (plain Python,
terminal IPython, tests), or with ``static=True``, nothing is drawn during training and ``close()`` draws
one final figure, left open in pyplot like every figure of ``gan_lib.plots`` (``view.figure`` holds it).
"In a kernel" is ``explore.widgets_available()``, so a kernel without ipywidgets also gets the static view.

``tensorboard_logger(log_dir)`` is the same kind of callback for TensorBoard (Colab: ``%tensorboard --logdir``).
"""
from __future__ import annotations

import math
import re
import time
from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt

from gan_lib.explore import widgets_available
from gan_lib.plots import plot_curves, show_images


class LiveView:
    """An ``on_step(step, history)`` callback that redraws the training picture every ``every`` steps.

    The picture is one figure: ``plot_curves(history, panels, smooth)`` on the left and, once the history
    holds samples, the latest fixed-noise grid (``nrow`` x ``nrow``, default up to 8 x 8) titled with its
    step on the right. ``panels`` defaults to the losses, plus the critic's "W estimate" when the history
    has one. ``total_steps`` (the run's ``steps``) widens the interval so that a run renders at most about
    ``max_renders`` times; without it the interval doubles after every ``max_renders`` renders.
    ``then(step, history)`` is called after the view on every step (a scheduler, an EMA update, ...).

    Cost, measured on a 2-core CPU: one render (2000-step curves and an 8x8 grid of 32 px images) takes
    ~0.1 s to draw and ~0.17 s with the PNG the page gets (~0.24 s with a "W estimate" panel), so ``every``
    should be tens to hundreds of steps; ``render_seconds`` and ``renders`` keep the time spent and the count.
    Between renders a step costs one modulo.
    """

    def __init__(self, every: int = 100, panels: Mapping[str, Sequence[str]] | None = None, smooth: int = 1,
                 total_steps: int | None = None, max_renders: int = 20, static: bool | None = None,
                 nrow: int | None = None, title: str | None = None,
                 then: Callable[[int, dict], None] | None = None):
        if every < 1 or max_renders < 1:
            raise ValueError(f"every={every}, max_renders={max_renders}: both must be >= 1, e.g. every=100.")
        self.every = max(every, math.ceil(total_steps / max_renders)) if total_steps else every
        self.panels, self.smooth, self.max_renders, self.nrow, self.title = panels, smooth, max_renders, nrow, title
        self.static = not widgets_available() if static is None else static
        self.then = then
        self.history, self.handle, self.figure, self.closed = None, None, None, False
        self.renders, self.render_seconds, self.rendered_step = 0, 0.0, None

    def __call__(self, step: int, history: dict) -> None:
        self.history = history
        if not self.static and step % self.every == 0:
            self.show(step)
        if self.then is not None:
            self.then(step, history)

    def show(self, step: int) -> None:
        """Render the history now and put the figure into the one output area (live mode)."""
        from IPython.display import display

        fig = self.render(self.history)
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)                    # shown once through the handle, not again at the end of the cell
        self.rendered_step = step
        if self.renders % self.max_renders == 0:
            self.every *= 2               # only reached without total_steps, or when a run goes on longer

    def render(self, history: Mapping) -> plt.Figure:
        """The figure for ``history``: curves left, latest fixed-noise grid right (when there are samples)."""
        start = time.perf_counter()
        panels = self.panels or _default_panels(history)
        fig = plot_curves(history, panels, smooth=self.smooth, title=self.title)
        samples = history.get("samples") or []
        if samples:
            step, images = samples[-1]
            n = len(panels)
            grid = fig.add_gridspec(1, n + 1)
            for i, ax in enumerate(fig.axes):
                ax.set_subplotspec(grid[i])
            width, height = fig.get_size_inches()
            fig.set_size_inches(width + height, height)
            nrow = self.nrow or min(8, math.isqrt(len(images)))
            show_images(images, nrow=nrow, title=f"fixed noise, step {step}", ax=fig.add_subplot(grid[n]))
            fig.tight_layout()
        self.renders += 1
        self.render_seconds += time.perf_counter() - start
        self.figure = fig
        return fig

    def close(self) -> None:
        """Draw the final state once: the live output is brought up to date, or the static figure is drawn."""
        if self.closed or self.history is None:
            self.closed = True            # nothing trained yet, or already closed: nothing to draw
            return
        self.closed = True
        if self.static:
            self.render(self.history)     # left open: the notebook (or plt.show()) shows it once
        elif self.rendered_step != self.history.get("step"):
            self.show(self.history.get("step"))

    def __enter__(self) -> "LiveView":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _default_panels(history: Mapping) -> dict[str, list[str]]:
    panels = {"losses": [key for key in ("loss_d", "loss_g") if key in history]}
    if "W estimate" in history:
        panels["W estimate"] = ["W estimate"]
    return {name: keys for name, keys in panels.items() if keys}


def tensorboard_logger(log_dir: str, every: int = 10) -> Callable[[int, dict], None]:
    """An ``on_step(step, history)`` callback that writes to TensorBoard every ``every`` steps: the mean of each
    per-step number of the history (losses, D's outputs) over those steps, and each new fixed-noise grid.
    ``callback.writer`` is the ``SummaryWriter``; view with ``tensorboard --logdir <log_dir>``."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ImportError("TensorBoard logging needs the tensorboard package: `pip install tensorboard` (Colab "
                          "and Kaggle have it already), or leave the logger out.") from None
    from torchvision.utils import make_grid

    if every < 1:
        raise ValueError(f"every={every}: log every >= 1 steps, e.g. every=10.")
    writer, last_grid = SummaryWriter(log_dir), [None]

    def callback(step: int, history: dict) -> None:
        if step % every:
            return
        for key, values in history.items():
            if key != "samples" and isinstance(values, list) and values and isinstance(values[-1], (int, float)):
                recent = values[-every:]                                  # this interval's steps
                writer.add_scalar(re.sub(r"[^\w./-]+", "_", key).strip("_"), sum(recent) / len(recent), step)
        samples = history.get("samples") or []
        if samples and samples[-1][0] != last_grid[0]:
            last_grid[0], images = samples[-1]                           # (N, C, H, W) in [-1, 1]
            grid = make_grid(images, nrow=math.isqrt(len(images)), normalize=True, value_range=(-1, 1))
            writer.add_image("fixed noise", grid, last_grid[0])
        writer.flush()

    callback.writer = writer
    return callback
