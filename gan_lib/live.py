"""Training views as callbacks: LiveView redraws the curves and the newest grid in place; TensorBoard logs them."""
import math
import re

import matplotlib.pyplot as plt

from gan_lib.callbacks import Grids
from gan_lib.explore import widgets_available
from gan_lib.plots import plot_curves, show_images
from gan_lib.train import Callback, Loop


def _newest_grid(loop: Loop):
    grids = loop.find(Grids)
    return grids.samples[-1] if grids is not None and grids.samples else None     # (step, images) or None


class LiveView(Callback):
    """Loss curves and the newest ``Grids`` grid, redrawn in place ~``max_renders`` times; static: once at the end."""

    def __init__(self, every: int = 100, smooth: int = 1, total_steps: int | None = None, max_renders: int = 20,
                 static: bool | None = None, title: str | None = None):
        if every < 1 or max_renders < 1:
            raise ValueError(f"every={every}, max_renders={max_renders}: both must be >= 1, e.g. every=100.")
        self.every = max(every, math.ceil(total_steps / max_renders)) if total_steps else every
        self.smooth, self.max_renders, self.title = smooth, max_renders, title
        self.static = not widgets_available() if static is None else static
        self.handle = self.figure = None             # the output area's display handle, the last figure
        self.renders = 0
        self.step = self.drawn_step = None           # the last step seen, the last step drawn

    def on_step(self, loop: Loop) -> None:
        self.step = loop.run.step
        if not self.static and self.step % self.every == 0:
            with loop.paused():                      # drawing is not training time
                self.draw(loop)

    def on_end(self, loop: Loop) -> None:
        if self.step != self.drawn_step:             # this call trained, and its last step is not drawn yet
            self.draw(loop)

    def draw(self, loop: Loop) -> None:
        """Curves left, the newest grid right: shown in the output area, or (static) left open in ``.figure``."""
        from IPython.display import display

        history = loop.run.history
        panels = {"losses": [key for key in ("loss_d", "loss_g") if key in history]}
        if "W estimate" in history:
            panels["W estimate"] = ["W estimate"]
        fig = self.figure = plot_curves(history, panels, smooth=self.smooth, title=self.title)
        if (grid := _newest_grid(loop)) is not None:     # one more column for the grid
            step, images = grid
            layout = fig.add_gridspec(1, len(panels) + 1)
            for i, ax in enumerate(fig.axes):
                ax.set_subplotspec(layout[i])
            fig.set_figwidth(fig.get_figwidth() + fig.get_figheight())     # a square more
            show_images(images, nrow=min(8, math.isqrt(len(images))), title=f"fixed noise, step {step}",
                        ax=fig.add_subplot(layout[-1]))
        self.renders += 1
        self.drawn_step = loop.run.step
        if self.static:
            return                                   # the notebook (or plt.show()) shows it once
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
        step = loop.run.step
        if step % self.every:
            return
        for key, values in loop.run.history.items():
            if values and isinstance(values[-1], (int, float)):
                recent = values[-self.every:]                              # this interval's steps
                self.writer.add_scalar(re.sub(r"[^\w./-]+", "_", key).strip("_"), sum(recent) / len(recent), step)
        if (grid := _newest_grid(loop)) is not None and grid[0] != self.logged_grid:
            self.logged_grid, images = grid                                # (N, C, H, W) in [-1, 1]
            self.writer.add_images("fixed noise", images.add(1).div(2), self.logged_grid)   # one grid, 8 a row
        self.writer.flush()
