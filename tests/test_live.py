"""The live training view and TensorBoard as callbacks: render only at the interval, into one display id, draw the
newest grid of the run's Grids callback, and close their figures."""
import contextlib
from types import SimpleNamespace

import IPython.display
import matplotlib
import pytest
import torch
from torch import nn

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from gan_lib.callbacks import Grids  # noqa: E402
from gan_lib.callbacks import LiveView, TensorBoard  # noqa: E402
from gan_lib.losses import NonSaturatingLoss, WassersteinLoss  # noqa: E402
from gan_lib.plots import plot_curves  # noqa: E402
from gan_lib.train import Callback, Options, train  # noqa: E402


class FakeDisplay:
    """Stands in for IPython.display.display: records display calls and the updates of the handle."""

    def __init__(self):
        self.displayed, self.updates = [], []

    def __call__(self, obj, display_id=None):
        assert display_id is True
        self.displayed.append(obj)
        return self

    def update(self, obj):
        self.updates.append(obj)


class Seen(Callback):
    """Records (step, renders of ``view`` so far) after every step."""

    def __init__(self, view=None):
        self.view, self.steps = view, []

    def on_step(self, loop):
        self.steps.append((loop.run.step, self.view.renders if self.view else None))


@pytest.fixture
def fake_display(monkeypatch):
    plt.close("all")
    fake = FakeDisplay()
    monkeypatch.setattr(IPython.display, "display", fake)
    yield fake
    plt.close("all")


def _run(*callbacks, steps=10, loss=None):
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 3 * 8 * 8), nn.Tanh(), nn.Unflatten(1, (3, 8, 8)))
    D = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 1))
    opt_g, opt_d = (torch.optim.SGD(m.parameters(), lr=0.01) for m in (G, D))
    batches = iter(lambda: torch.rand(8, 3, 8, 8) * 2 - 1, None)
    return train(G, D, opt_g, opt_d, batches, loss or NonSaturatingLoss(), lambda n: torch.randn(n, 4), steps,
                 options=Options(progress=False), callbacks=callbacks)


def test_live_view_renders_at_the_interval_into_one_display_id(fake_display):
    view, seen = LiveView(every=3, static=False), Seen()
    run = _run(view, Grids(torch.randn(16, 4), every=2), seen, steps=10)
    assert view.renders == 4                               # steps 3, 6, 9, then the final state at the end
    assert len(fake_display.displayed) == 1 and len(fake_display.updates) == 3
    assert view.drawn_step == run.step == 10
    assert [step for step, _ in seen.steps] == list(range(1, 11))   # the other callbacks run on every step
    assert plt.get_fignums() == []                         # every rendered figure was closed
    fig = fake_display.updates[-1]
    assert len(fig.axes) == 2 and fig.axes[1].get_title() == "fixed noise, step 10"   # the newest grid
    assert {line.get_label() for line in fig.axes[0].lines} == {"loss_d", "loss_g"}


def test_total_steps_widens_the_interval_to_bound_the_renders(fake_display):
    view = LiveView(every=1, total_steps=40, max_renders=5, static=False)
    assert view.every == 8
    calls = []
    view.draw = lambda loop: calls.append(loop.run.step)  # count renders without drawing
    for step in range(1, 41):
        view.on_step(SimpleNamespace(run=SimpleNamespace(step=step), paused=contextlib.nullcontext))
    assert calls == [8, 16, 24, 32, 40]
    with pytest.raises(ValueError, match="every"):
        LiveView(every=0)


def test_without_total_steps_the_interval_doubles_after_max_renders(fake_display):
    view = LiveView(every=1, max_renders=3, static=False)
    seen = Seen(view)
    _run(view, seen, steps=12)                             # step 12 is shown during training: no extra render
    rendered_at = [step for (step, n), (_, before) in zip(seen.steps, [(0, 0)] + seen.steps) if n > before]
    assert rendered_at == [1, 2, 3, 4, 6, 8, 12] and view.every == 4 and view.renders == 7
    assert plt.get_fignums() == []


def test_static_view_draws_one_figure_at_the_end_only(fake_display):
    view = LiveView(every=1, static=True)
    seen = Seen(view)
    run = _run(view, seen, steps=6, loss=WassersteinLoss())
    assert [n for _, n in seen.steps] == [0] * 6           # nothing drawn during training
    assert view.renders == 1 and len(plt.get_fignums()) == 1
    assert fake_display.displayed == [] and fake_display.updates == []
    fig = view.figure
    assert [ax.get_title() for ax in fig.axes] == ["losses", "W estimate"]    # no Grids: no grid panel
    assert len(fig.axes[1].lines[0].get_xdata()) == run.step == 6


def test_outside_a_kernel_the_view_is_static(fake_display):
    view = LiveView(every=1)
    assert view.static                                     # pytest has no IPython kernel
    view.on_end(None)                                      # ended before any step: nothing to draw
    assert view.renders == 0 and len(fake_display.displayed) == 0
    with pytest.raises(KeyError, match="no such curve"):                # the curves it draws are checked by name
        plot_curves({"loss_d": [1.0]}, {"losses": ["loss_d", "no such curve"]})


def test_tensorboard_writes_interval_means_and_each_new_grid(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = TensorBoard(str(tmp_path), every=4)
    run = _run(Grids(torch.randn(16, 4), every=6), log, steps=12)
    log.writer.close()
    events = EventAccumulator(str(tmp_path)).Reload()
    assert {"loss_d", "loss_g", "D_x", "D_G_z_before_D_step"} <= set(events.Tags()["scalars"])
    logged = events.Scalars("loss_d")
    assert [e.step for e in logged] == [4, 8, 12]
    assert logged[1].value == pytest.approx(sum(run.history["loss_d"][4:8]) / 4, rel=1e-5)
    assert [e.step for e in events.Images("fixed noise")] == [6, 12]     # steps 8 and 12 log; 8 saw step 6's grid


def test_tensorboard_without_tensorboard_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)          # as if it were not installed
    with pytest.raises(ImportError, match=r"^TensorBoard logging needs the tensorboard package: `pip install"):
        TensorBoard("runs/x")
