"""Test-set metrics in nats per image: the one-sample negative ELBO and an importance-weighted NLL."""

from __future__ import annotations

import torch

from .data import to_float
from .device import model_device
from .history import Scores
from .loss import bernoulli_nll, importance_log_weights, importance_weighted_bound, kl_to_standard_normal
from .model import ConvVAE, eval_mode


def model_form(model: ConvVAE, x: torch.Tensor) -> torch.Tensor:
    """``x`` [N, C, H, W] as it is, once it is checked to be of the model's image form; a
    ValueError in words otherwise (a colour model given grayscale images, or another size)."""
    if tuple(x.shape[1:]) != model.config.image_shape:
        raise ValueError(f"the images are {form_words(tuple(x.shape[1:]))}, but the model takes "
                         f"{form_words(model.config.image_shape)}")
    return x


def form_words(shape: tuple[int, ...]) -> str:
    """An image shape (C, H, W) in words: "grayscale 28x28", "colour 32x32"."""
    if len(shape) != 3 or shape[0] not in (1, 3):
        return f"of shape {shape}"
    return f"{'grayscale' if shape[0] == 1 else 'colour'} {shape[1]}x{shape[2]}"


@torch.no_grad()
def negative_elbo_parts(
    model: ConvVAE, images: torch.Tensor, batch_size: int = 1000, seed: int = 0, progress=None,
    autocast: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image BCE and KL [N] (their sum is the -ELBO), with one seeded posterior sample each,
    as pytorch/examples reports it: a model always gets the same numbers. An autoencoder's BCE is
    that of its code and its KL 0, so its "-ELBO" is its reconstruction loss alone. ``images`` are in
    the model's form (``VAEConfig.image_shape``), uint8 [N, H, W] or [N, 3, H, W] as a dataset holds
    them, or floats in [0, 1] shaped [N, C, H, W]; the BCE sums over every pixel and colour channel.
    ``progress(done, total)`` after a batch.
    ``autocast`` runs the layers in that dtype (training's per-epoch curves); the loss stays fp32."""
    device = model_device(model)
    generator = torch.Generator(device=device).manual_seed(seed)
    bce, kl = [], []
    with eval_mode(model):
        for start in range(0, len(images), batch_size):
            x = model_form(model, to_float(images[start : start + batch_size], device))
            with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                mu, logvar = model.encode(x)
                eps = torch.randn(mu.shape, generator=generator, device=device)
                logits = model.decode_logits(model.reparameterize(mu, logvar, eps))
            bce.append(bernoulli_nll(logits, x).cpu())
            kl.append(kl_to_standard_normal(mu, logvar).cpu())
            if progress is not None:
                progress(start + len(x), len(images))
    empty = torch.zeros(0)
    return torch.cat(bce) if bce else empty, torch.cat(kl) if kl else empty


def evaluate(
    model: ConvVAE, images: torch.Tensor, batch_size: int = 1000, seed: int = 0, autocast: torch.dtype | None = None
) -> Scores:
    """Mean negative ELBO (``loss``), ``bce`` and ``kl`` per image over ``images``."""
    bce, kl = negative_elbo_parts(model, images, batch_size, seed, autocast=autocast)
    n = max(len(images), 1)
    bce_sum, kl_sum = bce.double().sum().item(), kl.double().sum().item()
    return Scores(loss=(bce_sum + kl_sum) / n, bce=bce_sum / n, kl=kl_sum / n)


@torch.no_grad()
def importance_weighted_nll(
    model: ConvVAE, images: torch.Tensor, k: int = 100, batch_size: int = 100, seed: int = 0,
    progress=None,
) -> float:
    """Mean -log p(x) per image, estimated with k importance samples from q(z|x):
    -log mean_k p(x|z_k) p(z_k) / q(z_k|x). Tighter than the ELBO; equals it at k=1.
    ``progress(done, total)`` is called after each batch when given. An autoencoder, which has no
    q(z|x), is refused with a ValueError."""
    device = model_device(model)
    generator = torch.Generator(device=device).manual_seed(seed)
    total = 0.0
    with eval_mode(model):
        for start in range(0, len(images), batch_size):
            x = model_form(model, to_float(images[start : start + batch_size], device))
            log_weights = importance_log_weights(model, x, k, generator)[0]
            total += -importance_weighted_bound(log_weights).sum().item()
            if progress is not None:
                progress(start + len(x), len(images))
    return total / max(len(images), 1)
