"""Training views as callbacks: ``LiveView`` redraws the losses and the newest fixed-noise grid in one output
area, ``TensorBoard(log_dir)`` logs them for TensorBoard (Colab: ``%tensorboard --logdir``).

    run = train(G, D, opt_g, opt_d, batches, loss, noise, until=steps,
                callbacks=[Grids(z, every=100), LiveView(every=100, total_steps=steps)])
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


def _default_panels(history: Mapping) -> dict[str, list[str]]:
    panels = {"losses": [key for key in ("loss_d", "loss_g") if key in history]}
    if "W estimate" in history:
        panels["W estimate"] = ["W estimate"]
    return {name: keys for name, keys in panels.items() if keys}


class LiveView(Callback):
    """Every ``every`` steps and at the end, ``plot_curves(history, panels, smooth)`` beside the newest grid; static
    (``static=True`` or outside a kernel): one figure at the end (``.figure``). ``panels`` None: the losses. At most
    ~``max_renders`` renders (~0.2 s each) over ``total_steps``; without it ``every`` doubles after each that many."""

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
        """Render now into the one output area, ``IPython.display`` with a display id, updated in place."""
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
        """The figure: curves left, the fixed-noise ``grid`` (step, images) right when given."""
        start = time.perf_counter()
        panels = self.panels or _default_panels(history)
        fig = plot_curves(history, panels, smooth=self.smooth, title=self.title)
        if grid is not None:
            step, images = grid
            layout = fig.add_gridspec(1, len(panels) + 1)
            for i, ax in enumerate(fig.axes):
                ax.set_subplotspec(layout[i])
            width, height = fig.get_size_inches()
            fig.set_size_inches(width + height, height)
            nrow = self.nrow or min(8, math.isqrt(len(images)))
            show_images(images, nrow=nrow, title=f"fixed noise, step {step}", ax=fig.add_subplot(layout[-1]))
            fig.tight_layout()
        self.renders += 1
        self.render_seconds += time.perf_counter() - start
        self.figure = fig
        return fig

    def close(self) -> None:
        """Draw the final state once: bring the live output up to date, or draw the static figure."""
        was_closed, self.closed = self.closed, True
        if was_closed or self.history is None:       # already closed, or nothing trained: nothing to draw
            return
        if self.static:
            self.render(self.history, self.grid)     # left open: the notebook (or plt.show()) shows it once
        elif self.rendered_step != self.step:
            self.show(self.step)


class TensorBoard(Callback):
    """Every ``every`` steps, log the interval's mean of each per-step number and each new grid to ``.writer``."""

    def __init__(self, log_dir: str, every: int = 10):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ImportError("TensorBoard logging needs the tensorboard package: `pip install tensorboard`, "
                              "or leave the logger out.") from None
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
