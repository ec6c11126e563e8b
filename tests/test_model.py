"""The model's layers and config (vae/model.py); its loss is in test_loss.py."""

import pytest
import torch
from torch import nn

from vae.loss import vae_loss
from vae.model import ConfigError, ConvVAE, VAEConfig, eval_mode


@pytest.mark.parametrize("config", [
    VAEConfig(), VAEConfig(latent_dim=2), VAEConfig(decoder_convs_7x7=0, decoder_convs_14x14=0, output_kernel=1),
    VAEConfig(arch="tutorial", latent_dim=256),
])
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


def test_tutorial_arch_has_the_articles_layers():
    model = ConvVAE(VAEConfig(arch="tutorial", latent_dim=256))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    deconvs = [m for m in model.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (1, 16, (5, 5), (1, 1)), (16, 32, (5, 5), (1, 1))]
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
    with pytest.raises(ConfigError) as refused:
        VAEConfig(latent_dim=0)
    assert (refused.value.field, refused.value.problem) == ("latent_dim", "must be an integer in [1, 512], got 0")


def test_eval_mode_restores_the_mode_it_found():
    model = ConvVAE(VAEConfig(latent_dim=2, channels=4, hidden=8, encoder_hidden=8))
    for training in (True, False):
        model.train(training)
        with eval_mode(model):
            assert not model.training
        assert model.training is training


def test_an_autoencoder_has_no_logvar_head_and_decodes_its_code_as_it_is():
    torch.manual_seed(0)
    model = ConvVAE(VAEConfig(latent_dim=4, channels=4, hidden=16, variational=False))
    assert model.fc_logvar is None and not any("logvar" in name for name, _ in model.named_parameters())
    x = torch.rand(5, 1, 28, 28)
    mu, logvar = model.encode(x)
    assert mu.shape == (5, 4) and logvar is None
    logits, mu, logvar = model(x)
    assert logvar is None and torch.equal(logits, model.decode_logits(mu)) and torch.equal(logits, model(x)[0])
    parts = vae_loss(logits, x, mu, logvar, beta=4.0)
    assert parts.kl == 0 and parts.total == parts.bce
    parts.total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with pytest.raises(ConfigError, match="variational must be True or False"):
        VAEConfig(variational="no")
    assert VAEConfig.from_dict({k: v for k, v in VAEConfig().to_dict().items() if k != "variational"}).variational
