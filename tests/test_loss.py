"""The negative ELBO and the importance-weighted bound (vae/loss.py), against hand computations."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vae.loss import (
    bce_per_pixel,
    bernoulli_nll,
    importance_log_weights,
    importance_weighted_bound,
    iwae_loss,
    kl_per_dim,
    kl_to_standard_normal,
    vae_loss,
)


def test_loss_equals_hand_computation():
    logits = torch.tensor([[[[2.0, -1.0], [0.0, 30.0]]]])
    x = torch.tensor([[[[1.0, 0.25], [0.0, 1.0]]]])
    mu, logvar = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.0, math.log(4.0)]])
    p = torch.sigmoid(logits.double())  # float64, so log(1 - p) stays finite at logit 30
    bce = -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum()
    # KL(N(mu, s^2) || N(0,1)) = 0.5 (mu^2 + s^2 - 1 - log s^2), per dimension
    kl = 0.5 * ((0.25 + 1 - 1 - 0) + (1 + 4 - 1 - math.log(4.0)))
    parts = vae_loss(logits, x, mu, logvar, beta=2.0)
    assert parts.bce.item() == pytest.approx(bce.item(), rel=1e-5)
    assert parts.kl.item() == pytest.approx(kl, rel=1e-6)
    assert parts.total.item() == pytest.approx(bce.item() + 2.0 * kl, rel=1e-5)
    # Their per-pixel and per-dimension terms, which the Inside page shows, add up to them.
    assert bce_per_pixel(logits, x).sum() == pytest.approx(bernoulli_nll(logits, x).item())
    assert kl_per_dim(mu, logvar)[0].tolist() == pytest.approx([0.125, 0.5 * (4 - math.log(4.0))])


class LinearDecoderVAE(nn.Module):
    """A 2-D latent whose posterior and decoder are fixed by hand, so the log-weights can be checked."""

    def encode(self, x):
        return torch.tensor([[0.5, -1.0], [0.0, 0.3]]), torch.tensor([[0.0, math.log(4.0)], [-1.0, 0.2]])

    def decode_logits(self, z):
        return (z @ torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.5, 1.0, -1.0, 0.0]])).view(-1, 1, 2, 2)


def test_importance_weights_and_bound_equal_a_hand_computation():
    model, k = LinearDecoderVAE(), 3
    x = torch.tensor([[[[1.0, 0.25], [0.0, 1.0]]], [[[0.5, 0.0], [1.0, 0.75]]]])
    log_w, nll, kl = importance_log_weights(model, x, k, torch.Generator().manual_seed(7))

    mu, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar)
    z = mu + torch.randn((k, 2, 2), generator=torch.Generator().manual_seed(7)) * std  # the same draws
    p = torch.sigmoid(model.decode_logits(z.reshape(-1, 2)).double()).view(k, 2, 4)
    xs = x.double().view(1, 2, 4)
    want_nll = -(xs * p.log() + (1 - xs) * (1 - p).log()).sum(-1)
    normal = torch.distributions.Normal
    log_q = normal(mu, std).log_prob(z).sum(-1)
    log_prior = normal(0.0, 1.0).log_prob(z).sum(-1)
    assert nll.double() == pytest.approx(want_nll, rel=1e-5)
    assert log_w.double() == pytest.approx(log_prior.double() - log_q.double() - want_nll, rel=1e-5)
    assert kl == pytest.approx(kl_to_standard_normal(mu, logvar), rel=1e-6)

    bound = importance_weighted_bound(log_w)
    assert bound.double() == pytest.approx(torch.log(log_w.double().exp().mean(0)), rel=1e-6)
    assert (bound >= log_w.mean(0)).all()  # Jensen: never below the average one-sample bound
    assert importance_weighted_bound(log_w[:1]) == pytest.approx(log_w[0])  # k=1: a one-sample ELBO

    torch.manual_seed(3)
    parts = iwae_loss(model, x, k)
    torch.manual_seed(3)
    log_w, nll, kl = importance_log_weights(model, x, k)
    assert parts.total == pytest.approx(-importance_weighted_bound(log_w).sum())
    assert parts.bce == pytest.approx(nll.mean(0).sum()) and parts.kl == pytest.approx(kl.sum())


def test_loss_from_logits_is_stable_where_probabilities_saturate():
    logits = torch.tensor([[[[-200.0, 200.0]]]])
    x = torch.tensor([[[[1.0, 0.0]]]])
    bce = vae_loss(logits, x, torch.zeros(1, 1), torch.zeros(1, 1)).bce
    assert bce.item() == pytest.approx(400.0)  # sigmoid then BCE would clamp to 200 (log clamped at -100)
    assert F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum").item() == pytest.approx(200.0)


def test_kl_is_zero_at_the_prior():
    assert kl_to_standard_normal(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max() == 0


def test_an_autoencoders_code_has_no_kl_and_no_importance_weights():
    mu, x = torch.randn(3, 4), torch.rand(3, 1, 2, 2)
    assert kl_per_dim(mu, None).tolist() == torch.zeros(3, 4).tolist() and kl_to_standard_normal(mu, None).shape == (3,)
    logits = torch.randn(3, 1, 2, 2)
    parts = vae_loss(logits, x, mu, None, beta=4.0)
    assert parts.kl == 0 and parts.total == parts.bce == bernoulli_nll(logits, x).sum()

    class Autoencoder(LinearDecoderVAE):
        def encode(self, x):
            return super().encode(x)[0], None

    with pytest.raises(ValueError, match="an autoencoder has no posterior"):
        importance_log_weights(Autoencoder(), x[:2], 3)
