"""A live training view: loss curves and the latest fixed-noise grid, redrawn in one output area in place.

    run = train(G, D, opt_g, opt_d, batches, loss, noise, until=steps,
                callbacks=[Grids(z, every=100), LiveView(every=100, total_steps=steps)])

In a Jupyter kernel (Jupyter, Colab, Kaggle, nbclient/nbval) the first render opens one output with
``IPython.display.display(fig, display_id=True)`` and each later render replaces it (``handle.update``): no
widgets are needed, so it also survives nbconvert/HTML export as the last picture. Elsewhere (plain Python,
terminal IPython, tests), or with ``static=True``, nothing is drawn during training and ``close()`` draws
one final figure, left open in pyplot like every figure of ``gan_lib.plots`` (``view.figure`` holds it).
"In a kernel" is ``explore.widgets_available()``, so a kernel without ipywidgets also gets the static view.

``TensorBoard(log_dir)`` is the same kind of callback for TensorBoard (Colab: ``%tensorboard --logdir``). Both show
the newest grid of the run's ``Grids`` callback, if it has one.
"""
from __future__ import annotations

import math
import re
import time
from typing import Mapping, Sequence

import matplotlib.pyplot as plt

from gan_lib.callbacks import Grids
from gan_lib.explore import widgets_available
from gan_lib.plots import plot_curves, show_images
from gan_lib.train import Callback, Loop


def _newest_grid(loop: Loop):
    """(step, images) of the newest grid of the run's Grids callback, or None."""
    grids = loop.find(Grids)
    return grids.samples[-1] if grids is not None and grids.samples else None


class LiveView(Callback):
    """A callback that redraws the training picture every ``every`` steps, and once more at the end of the call.

    The picture is one figure: ``plot_curves(run.history, panels, smooth)`` on the left and, once the run's
    ``Grids`` callback holds a grid, the latest one (``nrow`` x ``nrow``, default up to 8 x 8) titled with its
    step on the right. ``panels`` defaults to the losses, plus the critic's "W estimate" when the history
    has one. ``total_steps`` (the run's ``until``) widens the interval so that a run renders at most about
    ``max_renders`` times; without it the interval doubles after every ``max_renders`` renders.

    Cost, measured on a 2-core CPU: one render (2000-step curves and an 8x8 grid of 32 px images) takes
    ~0.1 s to draw and ~0.17 s with the PNG the page gets (~0.24 s with a "W estimate" panel), so ``every``
    should be tens to hundreds of steps; ``render_seconds`` and ``renders`` keep the time spent and the count.
    Between renders a step costs one modulo.
    """

    def __init__(self, every: int = 100, panels: Mapping[str, Sequence[str]] | None = None, smooth: int = 1,
                 total_steps: int | None = None, max_renders: int = 20, static: bool | None = None,
                 nrow: int | None = None, title: str | None = None):
        if every < 1 or max_renders < 1:
            raise ValueError(f"every={every}, max_renders={max_renders}: both must be >= 1, e.g. every=100.")
        self.every = max(every, math.ceil(total_steps / max_renders)) if total_steps else every
        self.panels, self.smooth, self.max_renders, self.nrow, self.title = panels, smooth, max_renders, nrow, title
        self.static = not widgets_available() if static is None else static
        self.history, self.grid, self.step, self.handle, self.figure = None, None, None, None, None
        self.renders, self.render_seconds, self.rendered_step, self.closed = 0, 0.0, None, False

    def on_step(self, loop: Loop) -> None:
        self.history, self.grid, self.step = loop.run.history, _newest_grid(loop), loop.run.step
        if not self.static and self.step % self.every == 0:
            with loop.paused():                      # drawing is not training time
                self.show(self.step)

    def on_end(self, loop: Loop) -> None:
        if self.history is not None:                 # a call that trained: draw where it ended
            self.grid, self.step = _newest_grid(loop), loop.run.step
            self.close()

    def show(self, step: int) -> None:
        """Render the history now and put the figure into the one output area (live mode)."""
        from IPython.display import display

        fig = self.render(self.history, self.grid)
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)                    # shown once through the handle, not again at the end of the cell
        self.rendered_step = step
        if self.renders % self.max_renders == 0:
            self.every *= 2               # only reached without total_steps, or when a run goes on longer

    def render(self, history: Mapping, grid: tuple | None = None) -> plt.Figure:
        """The figure for ``history``: curves left, the fixed-noise ``grid`` (step, images) right, when given."""
        start = time.perf_counter()
        panels = self.panels or _default_panels(history)
        fig = plot_curves(history, panels, smooth=self.smooth, title=self.title)
        if grid is not None:
            step, images = grid
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
            self.render(self.history, self.grid)   # left open: the notebook (or plt.show()) shows it once
        elif self.rendered_step != self.step:
            self.show(self.step)

    def __enter__(self) -> "LiveView":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _default_panels(history: Mapping) -> dict[str, list[str]]:
    panels = {"losses": [key for key in ("loss_d", "loss_g") if key in history]}
    if "W estimate" in history:
        panels["W estimate"] = ["W estimate"]
    return {name: keys for name, keys in panels.items() if keys}


class TensorBoard(Callback):
    """Write to TensorBoard every ``every`` steps: the mean of each per-step number of the history (losses, D's
    outputs) over those steps, and each new fixed-noise grid. ``.writer`` is the ``SummaryWriter``; view with
    ``tensorboard --logdir <log_dir>``."""

    def __init__(self, log_dir: str, every: int = 10):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ImportError("TensorBoard logging needs the tensorboard package: `pip install tensorboard` (Colab "
                              "and Kaggle have it already), or leave the logger out.") from None
        if every < 1:
            raise ValueError(f"every={every}: log every >= 1 steps, e.g. every=10.")
        self.writer, self.every, self.logged_grid = SummaryWriter(log_dir), every, None

    def on_step(self, loop: Loop) -> None:
        from torchvision.utils import make_grid

        step = loop.run.step
        if step % self.every:
            return
        for key, values in loop.run.history.items():
            if values and isinstance(values[-1], (int, float)):
                recent = values[-self.every:]                              # this interval's steps
                self.writer.add_scalar(re.sub(r"[^\w./-]+", "_", key).strip("_"), sum(recent) / len(recent), step)
        grid = _newest_grid(loop)
        if grid is not None and grid[0] != self.logged_grid:
            self.logged_grid, images = grid                                # (N, C, H, W) in [-1, 1]
            self.writer.add_image("fixed noise", make_grid(images, nrow=math.isqrt(len(images)), normalize=True,
                                                           value_range=(-1, 1)), self.logged_grid)
        self.writer.flush()
