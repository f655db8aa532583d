"""Differentiable augmentation (DiffAugment, Zhao et al., 2020) for the discriminator's inputs.

D sees only augmented images, real and fake; every op is differentiable, so G's gradient flows through it.
A small ``p`` suits 10k+ images, ``p=1`` (the paper's setting) 100-1,000.
"""
import torch
import torch.nn.functional as F


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5), one draw per image. (B, C, H, W)."""
    r = lambda: torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)    # (B, 1, 1, 1)
    x = x + (r() - 0.5)
    mean = x.mean(dim=1, keepdim=True)                                              # (B, 1, H, W)
    x = (x - mean) * (r() * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)                                      # (B, 1, 1, 1)
    return (x - mean) * (r() + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size in x and y (whole pixels), filling with zeros."""
    B, _, H, W = x.shape
    shift = torch.randint(-int(H * ratio), int(H * ratio) + 1, (B, 2), device=x.device)  # (B, 2) pixels
    theta = torch.eye(2, 3, device=x.device, dtype=x.dtype).repeat(B, 1, 1)          # (B, 2, 3), the identity
    theta[:, :, 2] = -2 * shift.to(x.dtype) / torch.tensor([W, H], device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)                 # (B, H, W, 2)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of ``ratio`` x the image size at a random place in each image."""
    B, _, H, W = x.shape
    h, w = int(H * ratio), int(W * ratio)
    top = torch.randint(0, H - h + 1, (B, 1, 1), device=x.device)                   # (B, 1, 1)
    left = torch.randint(0, W - w + 1, (B, 1, 1), device=x.device)
    ys, xs = torch.arange(H, device=x.device).view(1, H, 1), torch.arange(W, device=x.device).view(1, 1, W)
    hole = (ys >= top) & (ys < top + h) & (xs >= left) & (xs < left + w)            # (B, H, W)
    return x * (~hole).unsqueeze(1).to(x.dtype)


OPS = {"color": color, "translation": translation, "cutout": cutout}


class DiffAugment:
    """``augment(x)``: the ops in ``policy`` (comma-separated, in order) on a random fraction ``p`` of x's images."""

    def __init__(self, policy: str = "color,translation,cutout", p: float = 1.0):
        self.ops = [name.strip() for name in policy.split(",") if name.strip()]
        if not set(self.ops) <= OPS.keys() or not 0.0 <= p <= 1.0:
            raise ValueError(f"policy={policy!r}, p={p}: use ops from {', '.join(OPS)} (comma-separated) and "
                             f"a probability p in [0, 1].")
        self.p = p

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0 or not self.ops:
            return x
        y = x
        for name in self.ops:
            y = OPS[name](y)
        if self.p == 1:
            return y
        chosen = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < self.p             # (B, 1, 1, 1)
        return torch.where(chosen, y, x)
