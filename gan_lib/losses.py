"""GAN losses with one interface, so the shared training loop takes any of them.

A loss object has two methods; each returns ``(loss, stats)`` where ``stats`` maps a name to a detached
0-d tensor for the history (e.g. the mean D(x)); the loop turns the ones it keeps into floats, once per step:

    discriminator_loss(D, real, fake)   # fake is already detached
    generator_loss(D, fake)             # gradients flow through D into G

Lesson 01 writes the non-saturating loss out by hand; this is the same loss, packaged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class NonSaturatingLoss:
    """The standard GAN loss: D minimises BCE(real -> 1, fake -> 0); G minimises BCE(fake -> 1) = -log D(G(z)).

    ``real_label`` < 1 is one-sided label smoothing (Salimans et al., 2016): D aims at e.g. 0.9 on real
    samples, which keeps it from becoming over-confident. The generator's target stays 1.
    """

    def __init__(self, real_label: float = 1.0):
        if not 0.5 < real_label <= 1.0:
            raise ValueError(f"real_label={real_label} must lie in (0.5, 1]: it is the target D aims at on real data.")
        self.real_label = real_label

    def discriminator_loss(self, D, real, fake):
        logits_real, logits_fake = D(real), D(fake)                         # (B, 1) each
        loss = (F.binary_cross_entropy_with_logits(logits_real, torch.full_like(logits_real, self.real_label))
                + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))
        stats = {"D(x)": torch.sigmoid(logits_real.detach()).mean(),
                 "D(G(z)) before D step": torch.sigmoid(logits_fake.detach()).mean()}
        return loss, stats

    def generator_loss(self, D, fake):
        logits = D(fake)                                                    # (B, 1)
        loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        return loss, {"D(G(z)) after D step": torch.sigmoid(logits.detach()).mean()}
