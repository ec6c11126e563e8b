"""The VAE objective: negative ELBO = summed Bernoulli cross-entropy + beta * analytic KL; and the
importance-weighted bound on log p(x), which ``vae/metrics.py`` estimates and training can fine-tune on."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)


class LossParts(NamedTuple):
    """Sums over the batch (divide by its size for per-image nats). ``total`` is what is minimised;
    ``bce`` and ``kl`` are the -ELBO's parts (for the importance-weighted bound, ``total`` is below
    their sum)."""

    total: torch.Tensor
    bce: torch.Tensor
    kl: torch.Tensor


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor | None) -> torch.Tensor:
    """KL(N(mu_j, exp(logvar_j)) || N(0, 1)) = (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2) / 2 for each
    latent dimension [B, d], in fp32. An autoencoder's code (logvar None) is no distribution: 0."""
    if logvar is None:
        return torch.zeros_like(mu, dtype=torch.float32)
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor | None) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example, summed over latent dimensions."""
    return kl_per_dim(mu, logvar).sum(dim=1)


def bce_per_pixel(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-[x log p + (1 - x) log(1 - p)] for each pixel, p = sigmoid(logits), in fp32: computed from
    the logits, so it stays finite where p rounds to 0 or 1."""
    return F.binary_cross_entropy_with_logits(logits.float(), x, reduction="none")


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) per example: the BCE summed over pixels."""
    return bce_per_pixel(logits, x).flatten(1).sum(1)


def vae_loss(
    logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor | None, beta: float = 1.0
) -> LossParts:
    """Batch-summed loss ``bce + beta * kl`` with its parts; at beta=1 it is the negative ELBO (an
    autoencoder's KL is 0: its loss is the BCE)."""
    bce = bernoulli_nll(logits, x).sum()
    kl = kl_to_standard_normal(mu, logvar).sum()
    return LossParts(bce + beta * kl, bce, kl)


def importance_log_weights(
    model, x: torch.Tensor, k: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For k samples z ~ q(z|x) per image: the log-weights log p(x|z) + log p(z) - log q(z|x) [k, B],
    the sampled -log p(x|z) [k, B] and the analytic KL [B]. The image is encoded once and its k
    latents decoded in one batch. The layers run in the caller's precision; the rest is fp32. An
    autoencoder has no q(z|x) to sample: ValueError."""
    mu, logvar = model.encode(x)
    if logvar is None:
        raise ValueError("an autoencoder has no posterior q(z|x) to draw importance samples from, "
                         "so it has no importance-weighted bound")
    mu, logvar = mu.float(), logvar.float()
    eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device)
    z = mu + eps * torch.exp(0.5 * logvar)  # [k, B, d]
    log_q = -0.5 * (eps.pow(2) + logvar + LOG_2PI).sum(-1)
    log_prior = -0.5 * (z.pow(2) + LOG_2PI).sum(-1)
    logits = model.decode_logits(z.reshape(k * len(x), -1))
    nll = bernoulli_nll(logits, x.repeat(k, 1, 1, 1)).view(k, len(x))
    return log_prior - log_q - nll, nll, kl_to_standard_normal(mu, logvar)


def importance_weighted_bound(log_weights: torch.Tensor) -> torch.Tensor:
    """log (1/k) sum_k w_k per image [B] (Burda et al., 2016): a lower bound on log p(x) that
    tightens as k grows; at k=1 it is a one-sample ELBO."""
    return torch.logsumexp(log_weights, dim=0) - math.log(log_weights.shape[0])


def iwae_loss(model, x: torch.Tensor, k: int) -> LossParts:
    """Batch-summed negative importance-weighted bound with k samples, and the -ELBO's parts (the
    mean sampled BCE and the analytic KL) for the curves."""
    log_weights, nll, kl = importance_log_weights(model, x, k)
    return LossParts(-importance_weighted_bound(log_weights).sum(), nll.mean(0).sum(), kl.sum())
