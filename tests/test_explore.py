"""Using a generator: seeded samples, top-k by D, slerp walks, the latent explorer and the training film."""
import sys
import types

import matplotlib
import pytest
import torch
from PIL import Image
from torch import nn

matplotlib.use("Agg")

from gan_lib.callbacks import Grids  # noqa: E402
from gan_lib.explore import (animate_samples, interpolation_grid, latent_explorer, sample_seeded,  # noqa: E402
                             sample_top_k, seeded_noise, slerp, widgets_available)
from gan_lib.plots import plot_progress_strip  # noqa: E402


def _tiny_gan(seed=0):
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Flatten(), nn.Linear(8, 3 * 16 * 16), nn.Tanh(), nn.Unflatten(1, (3, 16, 16)))
    G.latent_dim = 8
    D = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(3 * 16 * 16, 1))   # dropout: eval mode matters
    return G, D


def test_seeded_sampling_repeats_and_leaves_the_global_rng_alone():
    G, _ = _tiny_gan()
    state = torch.get_rng_state()
    a, b, c = sample_seeded(G, 5, seed=3), sample_seeded(G, 5, seed=3), sample_seeded(G, 5, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    assert a.shape == (5, 3, 16, 16)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert torch.allclose(sample_seeded(G, 5, seed=3, batch_size=2), a, atol=1e-6)   # batching: same faces
    assert seeded_noise(5, 3, 8).shape == (5, 8, 1, 1)
    with pytest.raises(ValueError, match="latent_dim"):
        sample_seeded(nn.Identity(), 2, seed=0)


@pytest.mark.parametrize("pool", [None, 13])
def test_top_k_keeps_the_highest_scoring_images_of_the_pool(pool):
    G, D = _tiny_gan()
    D.train()
    images, scores = sample_top_k(G, D, k=4, pool=pool, seed=1, batch_size=5)
    size = 16 if pool is None else pool
    everything = sample_seeded(G, size, seed=1)                        # the pool, scored by hand
    D.eval()
    with torch.no_grad():
        all_scores = D(everything).flatten()
    expected = all_scores.argsort(descending=True)[:4]
    assert torch.allclose(images, everything[expected], atol=1e-6)
    assert torch.allclose(scores, all_scores[expected])
    assert scores[0] >= scores[-1] and scores[-1] >= all_scores.sort(descending=True).values[4]
    assert not torch.equal(images, everything[:4])                     # not merely the first k


def test_top_k_restores_d_mode_and_checks_k():
    G, D = _tiny_gan()
    D.train()
    sample_top_k(G, D, k=2)
    assert D.training
    with pytest.raises(ValueError, match="pool"):
        sample_top_k(G, D, k=5, pool=3)


def test_slerp_endpoints_norm_and_fallback():
    torch.manual_seed(0)
    z0, z1 = torch.randn(6, 8, 1, 1), torch.randn(6, 8, 1, 1)
    assert torch.allclose(slerp(z0, z1, 0.0), z0, atol=1e-5)
    assert torch.allclose(slerp(z0, z1, 1.0), z1, atol=1e-5)
    u0, u1 = torch.nn.functional.normalize(torch.randn(2, 8), dim=1)
    mid = slerp(u0, u1, 0.5)
    assert mid.shape == (8,) and torch.isclose(mid.norm(), torch.tensor(1.0), atol=1e-5)
    assert (u0 + u1).div(2).norm() < 0.99                              # a straight line would shrink it
    same = slerp(u0, u0.clone(), 0.3)
    assert torch.isfinite(same).all() and torch.allclose(same, u0, atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        slerp(z0, z1[:2], 0.5)


def test_interpolation_grid_rows_run_from_one_seeded_face_to_another():
    G, _ = _tiny_gan()
    grid = interpolation_grid(G, n_rows=3, n_steps=5, seed=2)
    assert grid.shape == (15, 3, 16, 16)
    z = seeded_noise(6, 2, 8)
    ends = sample_seeded(G, 6, seed=2)
    assert torch.allclose(grid[0], ends[0], atol=1e-5) and torch.allclose(grid[4], ends[3], atol=1e-5)
    assert torch.allclose(grid[10], G(z[2:3])[0], atol=1e-5)


def test_widgets_available_follows_the_kernel_rule(monkeypatch):
    import IPython

    assert widgets_available() is False                                # pytest: no IPython shell
    monkeypatch.setattr(IPython, "get_ipython", lambda: types.SimpleNamespace(kernel=object()))
    assert widgets_available() is True
    monkeypatch.setitem(sys.modules, "ipywidgets", None)               # ipywidgets not installed
    assert widgets_available() is False


def test_latent_explorer_is_a_widget_or_degrades_to_a_figure(monkeypatch):
    import ipywidgets
    from matplotlib.figure import Figure

    G, _ = _tiny_gan()
    fig = latent_explorer(G, static=True, n_steps=4)
    assert isinstance(fig, Figure)
    assert isinstance(latent_explorer(G, static=None), Figure)         # no kernel here -> static
    box = latent_explorer(G, seed_max=10, static=False)
    assert isinstance(box, ipywidgets.Widget)
    seed_a, seed_b, t = box.children[:3]
    assert (seed_a.max, seed_b.value, t.value) == (10, 1, 0.5)
    start = box.result                                                 # (3, C, H, W): A, the mix, B
    assert torch.allclose(start[0], sample_seeded(G, 1, seed=0)[0], atol=1e-6)
    t.value = 1.0                                                      # t = 1: the mix is face B
    assert torch.allclose(box.result[1], start[2], atol=1e-5) and not torch.allclose(box.result[1], start[1])
    assert len(matplotlib.pyplot.get_fignums()) == 2                   # the two static figures: redraws close theirs
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    assert isinstance(latent_explorer(G, static=False), Figure)        # ipywidgets missing -> static
    matplotlib.pyplot.close("all")


def test_animate_samples_returns_a_player_and_writes_a_gif(tmp_path):
    torch.manual_seed(0)
    blocks = [torch.rand(16, 3, 8, 8) * 2 - 1 for _ in range(8)]                  # blocky faces: a quick GIF
    samples = [(100 * (i + 1), nn.functional.interpolate(b, scale_factor=8)) for i, b in enumerate(blocks)]
    path = tmp_path / "training.gif"
    html = animate_samples(samples, nrow=4, interval=200, path=path)
    assert "<img" in html.data or "animation" in html.data.lower()
    with Image.open(path) as gif:
        assert gif.n_frames == 8
    assert matplotlib.pyplot.get_fignums() == []                        # no stray static frame
    with pytest.raises(ValueError, match="gif"):
        animate_samples(samples, path=tmp_path / "film.mp4")
    with pytest.raises(ValueError, match=r"no fixed-noise grids were kept: train with a Grids\(fixed_noise"):
        animate_samples([])
    grids = Grids(torch.zeros(16, 4), every=1)                          # a Grids callback is taken as it is
    grids.samples = samples[:2]
    film = animate_samples(grids, nrow=4).data
    assert "<img" in film or "animation" in film.lower()
    assert [ax.get_title() for ax in plot_progress_strip(grids, nrow=4).axes] == ["step 100", "step 200"]
    matplotlib.pyplot.close("all")
