"""GAN losses behind one interface (``GANLoss``), so the one training loop takes any of them, and DiffAugment.

    loss = Regularised(HingeLoss(), augment=DiffAugment(p=0.2), r1=1.0)      # lesson 05
    loss_d, stats = loss.discriminator_loss(D, real, fake.detach())          # stats: {name: detached 0-d tensor}
"""
import torch
import torch.nn.functional as F


class GANLoss:
    """The hooks ``train`` calls: subclass it and write the two losses, each returning ``(loss, stats)``."""
    double_backward = False    # True when discriminator_loss differentiates D's gradient (a penalty)

    def discriminator_loss(self, D, real, fake, scale: float = 1.0):
        """D's loss on a real and a detached fake batch; ``scale``: fp16's GradScaler scale, for a penalty."""
        raise NotImplementedError

    def generator_loss(self, D, fake):
        """G's loss on a fake batch; its gradient flows through D into G."""
        raise NotImplementedError

    def after_discriminator_step(self, D) -> None:
        """Called after every D update (WGAN's weight clipping)."""

    def state_dict(self) -> dict:               # what a checkpoint keeps (Regularised's lazy schedule)
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class NonSaturatingLoss(GANLoss):
    """BCE, G maximising log D(G(z)); ``real_label`` < 1: one-sided label smoothing (Salimans et al., 2016)."""

    def __init__(self, real_label: float = 1.0):
        if not 0.5 < real_label <= 1.0:
            raise ValueError(f"real_label={real_label} must lie in (0.5, 1]: it is the target D aims at on real data.")
        self.real_label = real_label

    def discriminator_loss(self, D, real, fake, scale=1.0):
        logits_real, logits_fake = D(real), D(fake)                         # (B, 1); D: real -> real_label, fake -> 0
        loss = (F.binary_cross_entropy_with_logits(logits_real, torch.full_like(logits_real, self.real_label))
                + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))
        return loss, {"D(x)": torch.sigmoid(logits_real.detach()).mean(),
                      "D(G(z)) before D step": torch.sigmoid(logits_fake.detach()).mean()}

    def generator_loss(self, D, fake):
        logits = D(fake)                                                    # (B, 1)
        loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))    # G: fake -> 1, -log D(G(z))
        return loss, {"D(G(z)) after D step": torch.sigmoid(logits.detach()).mean()}


class WassersteinLoss(GANLoss):
    """WGAN (Arjovsky et al., 2017): the critic's gap E f(x) - E f(G(z)) estimates W1; ``clip`` clamps its weights."""

    def __init__(self, clip: float | None = None):
        if clip is not None and not clip > 0:
            raise ValueError(f"clip={clip} must be a positive number (the paper uses 0.01) or None for no clipping.")
        self.clip = clip

    def discriminator_loss(self, D, real, fake, scale=1.0):
        f_real, f_fake = D(real).mean(), D(fake).mean()                     # D gives (B, 1); 0-d each
        stats = {"W estimate": (f_real - f_fake).detach(), "f(x)": f_real.detach(), "f(G(z))": f_fake.detach()}
        return f_fake - f_real, stats                                       # critic: widen the gap

    def generator_loss(self, D, fake):
        f_fake = D(fake).mean()                                             # D gives (B, 1)
        return -f_fake, {"f(G(z)) after D step": f_fake.detach()}           # G: raise the critic's score

    @torch.no_grad()
    def after_discriminator_step(self, D):
        if self.clip is not None:
            for p in D.parameters():
                p.clamp_(-self.clip, self.clip)


def input_gradient(D, x: torch.Tensor, grad_scale: float = 1.0) -> torch.Tensor:
    """d sum_i D(x)_i / dx (B, C, H, W), differentiable so a penalty on it trains D; ``grad_scale``: fp16's scale."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).float().sum() * grad_scale, x, create_graph=True)
    return grad / grad_scale                                              # (B, C, H, W), unscaled


def gradient_penalty(D, real, fake, eps: torch.Tensor | None = None, grad_scale: float = 1.0):
    """mean_i (||grad f(x̂_i)||_2 - 1)^2 and the norms (B,) at x̂ = eps*real + (1-eps)*fake, eps ~ U(0, 1)."""
    if eps is None:
        eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    grad = input_gradient(D, eps * real + (1 - eps) * fake, grad_scale)   # (B, C, H, W) at x̂
    norms = grad.flatten(1).norm(dim=1)                                    # (B,)
    return ((norms - 1) ** 2).mean(), norms


class WassersteinGPLoss(WassersteinLoss):
    """WGAN-GP (Gulrajani et al., 2017): WGAN plus gp_weight * gradient_penalty (per sample: no batch norm in D)."""
    double_backward = True

    def __init__(self, gp_weight: float = 10.0):
        super().__init__(clip=None)
        if not gp_weight >= 0:
            raise ValueError(f"gp_weight={gp_weight} must be >= 0 (the paper uses 10).")
        self.gp_weight = gp_weight

    def discriminator_loss(self, D, real, fake, scale=1.0):
        loss, stats = super().discriminator_loss(D, real, fake)
        penalty, norms = gradient_penalty(D, real, fake, grad_scale=scale)  # keep the critic's slope near 1
        stats.update({"gradient penalty": penalty.detach(), "grad norm at x̂": norms.detach().mean()})
        return loss + self.gp_weight * penalty, stats


class HingeLoss(GANLoss):
    """Hinge loss (SAGAN, BigGAN): D minimises E relu(1 - f(x)) + E relu(1 + f(G(z))); G minimises -E f(G(z))."""

    generator_loss = WassersteinLoss.generator_loss

    def discriminator_loss(self, D, real, fake, scale=1.0):
        scores_real, scores_fake = D(real), D(fake)                         # (B, 1) each
        loss = F.relu(1 - scores_real).mean() + F.relu(1 + scores_fake).mean()
        return loss, {"f(x)": scores_real.detach().mean(), "f(G(z))": scores_fake.detach().mean()}


class Regularised(GANLoss):
    """``base`` on ``augment(x)``, plus (γ/2) E ||∇_x D(x)||² on reals (``r1``, Mescheder 2018), fakes (``r2``)."""

    def __init__(self, base, augment=None, r1: float = 0.0, r2: float = 0.0, every: int = 16):
        if r1 < 0 or r2 < 0 or every < 1:
            raise ValueError(f"r1={r1}, r2={r2}, every={every}: need weights >= 0 and every >= 1 (StyleGAN2: 16).")
        self.base, self.augment, self.r1, self.r2, self.every = base, augment, r1, r2, every
        self.calls, self.latest = 0, {}                  # latest: the last "R1"/"R2", kept in the stats
        self.double_backward = base.double_backward or bool(r1 or r2)
        self.after_discriminator_step = base.after_discriminator_step

    def _seen_by(self, D):                                                  # D as the loss sees it: D(augment(x))
        return D if self.augment is None else (lambda x: D(self.augment(x)))

    def discriminator_loss(self, D, real, fake, scale=1.0):
        D_seen = self._seen_by(D)
        loss, stats = self.base.discriminator_loss(D_seen, real, fake, scale)      # Dmain: the base loss on what D sees
        if self.calls % self.every == 0:    # Dreg, lazy (StyleGAN2): each every-th step, its weight times every
            for name, gamma, x in (("R1", self.r1, real), ("R2", self.r2, fake)):
                if gamma:
                    penalty = input_gradient(D_seen, x, scale).flatten(1).square().sum(1).mean()
                    loss = loss + (gamma / 2 * self.every) * penalty
                    self.latest[name] = penalty.detach()
        self.calls += 1
        return loss, {**stats, **self.latest}

    def generator_loss(self, D, fake):
        return self.base.generator_loss(self._seen_by(D), fake)                    # Gmain: G fools what D sees

    def state_dict(self) -> dict:               # the lazy schedule's place: a resumed run regularises the same steps
        return {"calls": self.calls}

    def load_state_dict(self, state: dict) -> None:
        self.calls = int(state["calls"])


# --- DiffAugment (Zhao et al., 2020): D sees only augmented images, real and fake; every op is differentiable, so
# G's gradient flows through it. A small p suits 10k+ images, p=1 (the paper's setting) 100-1,000. ---

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
