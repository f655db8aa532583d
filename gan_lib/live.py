"""Training views as callbacks: ``LiveView`` redraws the losses and the newest fixed-noise grid in one output
area, ``TensorBoard(log_dir)`` logs them for TensorBoard (Colab: ``%tensorboard --logdir``).

    run = train(G, D, opt_g, opt_d, batches, loss, noise, until=steps,
                callbacks=[Grids(z, every=100), LiveView(every=100, total_steps=steps)])
"""
from __future__ import annotations

import math
import re

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
    """The loss curves beside the newest grid of the run's ``Grids``, redrawn in place in one output area every
    ``every`` steps and once at the end. Static (outside a kernel or ``static=True``): one figure at the end, in
    ``.figure``.

    every        steps between redraws
    smooth       moving-average window of the curves (1: none)
    total_steps  the run's length: redraw at most ``max_renders`` times over it; None: unknown, so ``every`` doubles
                 after each ``max_renders`` redraws
    max_renders  how many redraws (~0.2 s each) to allow
    static       True: draw once at the end; None: static where widgets cannot render (``widgets_available()``)
    title        the figure's title; None: none
    """

    def __init__(self, every: int = 100, smooth: int = 1, total_steps: int | None = None, max_renders: int = 20,
                 static: bool | None = None, title: str | None = None):
        if every < 1 or max_renders < 1:
            raise ValueError(f"every={every}, max_renders={max_renders}: both must be >= 1, e.g. every=100.")
        self.every = max(every, math.ceil(total_steps / max_renders)) if total_steps else every
        self.smooth = smooth
        self.max_renders = max_renders
        self.title = title
        self.static = not widgets_available() if static is None else static
        self.handle = None                           # the display id's handle, once shown
        self.figure = None
        self.renders = 0
        self.step = None                             # the last step seen
        self.drawn_step = None                       # the step of the last drawing

    def on_step(self, loop: Loop) -> None:
        self.step = loop.run.step
        if not self.static and self.step % self.every == 0:
            with loop.paused():                      # drawing is not training time
                self.draw(loop)

    def on_end(self, loop: Loop) -> None:
        if self.step is not None and self.drawn_step != self.step:    # trained, and the end state not drawn yet
            self.draw(loop)

    def draw(self, loop: Loop) -> None:
        """The curves left, the newest grid right: shown in the one output area, or (static) kept in ``.figure``."""
        from IPython.display import display

        history = loop.run.history
        panels = {"losses": [key for key in ("loss_d", "loss_g") if key in history]}
        if "W estimate" in history:
            panels["W estimate"] = ["W estimate"]
        fig = plot_curves(history, panels, smooth=self.smooth, title=self.title)
        grid = _newest_grid(loop)
        if grid is not None:                         # one more column for the grid
            layout = fig.add_gridspec(1, len(panels) + 1)
            for i, ax in enumerate(fig.axes):
                ax.set_subplotspec(layout[i])
            width, height = fig.get_size_inches()
            fig.set_size_inches(width + height, height)
            step, images = grid
            show_images(images, nrow=min(8, math.isqrt(len(images))), title=f"fixed noise, step {step}",
                        ax=fig.add_subplot(layout[-1]))
            fig.tight_layout()
        self.figure = fig
        self.renders += 1
        self.drawn_step = loop.run.step
        if self.static:
            return                                   # left open: the notebook (or plt.show()) shows it once
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)                               # shown through the handle, not again at the end of the cell
        if self.renders % self.max_renders == 0:
            self.every *= 2                          # without total_steps, or when a run goes on longer


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
