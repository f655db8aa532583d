"""Using a trained generator: seeded samples, the best of a pool by D, slerp walks, the latent explorer, films."""
import matplotlib.pyplot as plt
import torch

from gan_lib.models import gaussian_noise
from gan_lib.plots import kept_grids, show_images


@torch.no_grad()
def sample(G, z: torch.Tensor) -> torch.Tensor:
    """G(z) in eval mode (dropout and batch-norm statistics frozen), returned on the CPU; G's mode is restored."""
    was_training = G.training
    G.eval()
    try:
        return G(z.to(next(G.parameters()).device)).cpu()
    finally:
        G.train(was_training)


def _latent_dim(G) -> int:
    if not hasattr(G, "latent_dim"):
        raise ValueError("G has no .latent_dim attribute: set one, e.g. G.latent_dim = 100.")
    return G.latent_dim


def seeded_noise(n: int, seed: int, latent_dim: int) -> torch.Tensor:
    """n latents (n, latent_dim, 1, 1) from their own CPU generator: the same on any device, global RNG untouched."""
    return gaussian_noise(n, latent_dim, torch.Generator().manual_seed(seed))


def sample_seeded(G, n: int, seed: int, batch_size: int = 256) -> torch.Tensor:
    """n images (n, C, H, W) in [-1, 1] of ``seeded_noise(n, seed, G.latent_dim)``, ``batch_size`` at a time."""
    z = seeded_noise(n, seed, _latent_dim(G))                                   # (n, L, 1, 1)
    return torch.cat([sample(G, chunk) for chunk in z.split(batch_size)])     # (n, C, H, W) on the CPU


def sample_top_k(G, D, k: int, pool: int | None = None, seed: int = 0, batch_size: int = 256):
    """(images, D's logits) of the k of ``sample_seeded(G, pool or 4k, seed)`` D rates best, best first; not for FID."""
    pool = 4 * k if pool is None else pool
    if not 1 <= k <= pool:
        raise ValueError(f"k={k}, pool={pool}: choose 1 <= k <= pool, e.g. pool=4*k.")
    images = sample_seeded(G, pool, seed, batch_size=batch_size)                  # (pool, C, H, W)
    scores = torch.cat([sample(D, chunk).flatten() for chunk in images.split(batch_size)])   # (pool,), eval mode
    scores, best = scores.topk(k)                                                 # (k,), highest first
    return images[best], scores


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation from z0 (t=0) to z1 (t=1) of one vector or (B, ...) vectors; lerp where no arc."""
    if z0.shape != z1.shape:
        raise ValueError(f"z0 {tuple(z0.shape)} and z1 {tuple(z1.shape)} differ: pass latents of one shape.")
    a, b = (z.reshape(1, -1) if z0.dim() == 1 else z.flatten(1) for z in (z0, z1))   # (B, D)
    cos = (a * b).sum(1, keepdim=True) / (a.norm(dim=1, keepdim=True) * b.norm(dim=1, keepdim=True))
    omega = cos.clamp(-1, 1).nan_to_num(1.0).acos()                               # (B, 1), angle
    sin = omega.sin()
    arc = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / sin.clamp_min(1e-6)
    return torch.where(sin < 1e-4, (1 - t) * a + t * b, arc).reshape(z0.shape)      # (anti)parallel: no arc


def interpolation_grid(G, n_rows: int = 4, n_steps: int = 8, seed: int = 0) -> torch.Tensor:
    """Images (n_rows * n_steps, C, H, W): row i walks by ``slerp`` from one seeded face to another."""
    z = seeded_noise(2 * n_rows, seed, _latent_dim(G))                            # (2R, L, 1, 1)
    steps = [slerp(z[:n_rows], z[n_rows:], t) for t in torch.linspace(0, 1, n_steps).tolist()]
    return sample(G, torch.stack(steps, 1).flatten(0, 1))                         # (R*S, C, H, W)


def widgets_available() -> bool:
    """True in a notebook kernel (Jupyter, Colab, Kaggle, nbclient) with ipywidgets; False in a terminal."""
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def latent_explorer(G, seed_max: int = 1000, n_steps: int = 8, static: bool | None = None):
    """Sliders (seeds A, B; t) over the faces of z_A, slerp(z_A, z_B, t), z_B; static: interpolation_grid's Figure."""
    try:
        import ipywidgets as widgets
        from IPython.display import display
    except ImportError:
        static = True
    if static or (static is None and not widgets_available()):
        rows = min(4, n_steps)                                                    # show_images shows n_steps**2
        _, ax = plt.subplots(figsize=(n_steps, rows + 0.4), layout="tight")        # fit the grid, not a square
        return show_images(interpolation_grid(G, rows, n_steps), nrow=n_steps, title="slerp between seeds", ax=ax)
    latent_dim = _latent_dim(G)

    def redraw(seed_a=0, seed_b=1, t=0.5):
        z0, z1 = seeded_noise(1, seed_a, latent_dim), seeded_noise(1, seed_b, latent_dim)
        faces = sample(G, torch.cat([z0, slerp(z0, z1, t), z1]))                 # (3, C, H, W)
        fig = show_images(faces, nrow=3, title=f"seed {seed_a}, t = {t:.2f} of the way to seed {seed_b}")
        fig.set_size_inches(6, 2.4)
        display(fig)                                                              # into the widget's output
        plt.close(fig)
        return faces

    return widgets.interactive(redraw, seed_a=(0, seed_max), seed_b=(0, seed_max),
                               t=(0.0, 1.0, 1 / max(1, n_steps - 1)))


def animate_samples(samples, nrow: int = 4, interval: int = 300, path=None):
    """An HTML player of a Grids callback's grids (or its .samples), ``interval`` ms each; a .gif ``path`` saves it."""
    from IPython.display import HTML
    from matplotlib.animation import FuncAnimation

    samples = kept_grids(samples)
    if path is not None and not str(path).lower().endswith(".gif"):
        raise ValueError(f"path={str(path)!r} is not a .gif file: pass a name ending in .gif, or path=None.")
    fig, ax = plt.subplots(figsize=(3, 3))

    def draw(i):                          # FuncAnimation draws frame 0 first
        ax.clear()
        show_images(samples[i][1], nrow=nrow, title=f"step {samples[i][0]}", ax=ax)

    try:
        anim = FuncAnimation(fig, draw, frames=len(samples), interval=interval)
        if path is not None:
            anim.save(str(path), writer="pillow", fps=1000 / interval)
        return HTML(anim.to_jshtml())
    finally:
        plt.close(fig)                    # the film only: no stray frame below it
