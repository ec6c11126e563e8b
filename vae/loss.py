"""The VAE objective: negative ELBO = summed Bernoulli cross-entropy + beta * analytic KL."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class LossParts(NamedTuple):
    """Sums over the batch (divide by its size for per-image nats)."""

    total: torch.Tensor
    bce: torch.Tensor
    kl: torch.Tensor


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example, summed over latent dimensions."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) per example: BCE from logits (stable for any logit), summed over pixels."""
    return F.binary_cross_entropy_with_logits(logits.float(), x, reduction="none").flatten(1).sum(1)


def vae_loss(
    logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0
) -> LossParts:
    """Batch-summed loss ``bce + beta * kl`` with its parts; at beta=1 it is the negative ELBO."""
    bce = bernoulli_nll(logits, x).sum()
    kl = kl_to_standard_normal(mu.float(), logvar.float()).sum()
    return LossParts(bce + beta * kl, bce, kl)
