import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vae.loss import kl_to_standard_normal, vae_loss
from vae.model import ConvVAE, VAEConfig


@pytest.mark.parametrize("config", [VAEConfig(), VAEConfig(latent_dim=2), VAEConfig(decoder_convs_7x7=0, decoder_convs_14x14=0, output_kernel=1),
                                    VAEConfig(arch="tutorial", latent_dim=256)])
def test_shapes_and_gradients(config):
    torch.manual_seed(0)
    model = ConvVAE(config)
    x = torch.rand(5, 1, 28, 28)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, config.latent_dim)
    logits, mu, logvar = model(x)
    assert logits.shape == (5, 1, 28, 28)
    probs = model.decode(mu)
    assert probs.shape == (5, 1, 28, 28) and probs.min() >= 0 and probs.max() <= 1
    assert model.sample(3).shape == (3, 1, 28, 28)
    vae_loss(logits, x, mu, logvar).total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


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


def test_loss_from_logits_is_stable_where_probabilities_saturate():
    logits = torch.tensor([[[[-200.0, 200.0]]]])
    x = torch.tensor([[[[1.0, 0.0]]]])
    bce = vae_loss(logits, x, torch.zeros(1, 1), torch.zeros(1, 1)).bce
    assert bce.item() == pytest.approx(400.0)  # sigmoid then BCE would clamp to 200 (log clamped at -100)
    assert F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum").item() == pytest.approx(200.0)


def test_kl_is_zero_at_the_prior():
    assert kl_to_standard_normal(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max() == 0


def test_tutorial_arch_has_the_articles_layers():
    model = ConvVAE(VAEConfig(arch="tutorial", latent_dim=256))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    deconvs = [m for m in model.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [(1, 16, (5, 5), (1, 1)), (16, 32, (5, 5), (1, 1))]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in deconvs] == [(32, 16, (5, 5)), (16, 1, (5, 5))]
    assert (model.fc_mu.in_features, model.fc_mu.out_features) == (32 * 20 * 20, 256)
    assert (model.fc_logvar.in_features, model.fc_logvar.out_features) == (32 * 20 * 20, 256)
    assert (model.fc_decode.in_features, model.fc_decode.out_features) == (256, 32 * 20 * 20)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="arch"):
        VAEConfig(arch="mlp")
    with pytest.raises(ValueError, match="latent_dim"):
        VAEConfig(latent_dim=0)
    with pytest.raises(ValueError, match="output_kernel must be odd"):
        VAEConfig(output_kernel=2)
    with pytest.raises(ValueError, match="decoder_convs_14x14"):
        VAEConfig(decoder_convs_14x14=-1)
    assert VAEConfig.from_dict(VAEConfig(latent_dim=7).to_dict()) == VAEConfig(latent_dim=7)
