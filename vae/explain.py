"""One image through the model, step by step, with its own numbers: the encoder's mu and log sigma²,
the eps drawn and z = mu + sigma * eps, the decoder's pixel probabilities, where the BCE is paid,
each latent dimension's KL, and the -ELBO they add up to. The Inside page shows it; ``python -m
vae.explain CHECKPOINT IMAGE`` prints it.

Everything is computed by the model's own methods and the loss's own functions (``source_of``
gives their code), with one posterior sample whose eps comes from a ``torch.Generator`` seeded
with ``seed`` on the model's device: so the -ELBO is exactly the one the Draw page shows for the
same image (``vae.latent.negative_elbo``, seed 0).
"""

from __future__ import annotations

import argparse
import inspect
import sys
import textwrap
from dataclasses import dataclass

import numpy as np
import torch

from . import loss
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint
from .data import to_float
from .device import model_device
from .latent import as_images
from .metrics import form_words
from .model import ConvVAE, eval_mode
from .preprocess import EmptyDrawingError, ImageDecodeError, open_image, to_model_form


@dataclass(frozen=True, eq=False)
class Explanation:
    """One image's pass, as numpy float32 arrays and floats in nats. Images are in the model's form
    as a dataset holds one: [H, W] grayscale or [3, H, W] colour. An autoencoder's ``logvar``,
    ``eps`` and ``kl_per_dim`` are None, its ``kl`` 0, its ``z`` its ``mu`` and its ``probs`` its
    ``probs_mean``."""

    x: np.ndarray  # [H, W] or [3, H, W] in [0, 1], the input as the model sees it
    mu: np.ndarray  # [d]
    logvar: np.ndarray | None  # [d], log sigma²
    eps: np.ndarray | None  # [d], drawn from N(0, I) with ``seed``
    z: np.ndarray  # [d], mu + sigma * eps
    probs: np.ndarray  # [H, W] or [3, H, W], pixel probabilities decoded from z
    probs_mean: np.ndarray  # [H, W] or [3, H, W], decoded from mu
    bce_per_pixel: np.ndarray  # [H, W], -[x log p + (1 - x) log(1 - p)] with p = probs, summed over colours
    kl_per_dim: np.ndarray | None  # [d]
    bce: float
    kl: float
    loss: float  # bce + kl: the -ELBO of this one sample
    beta: float  # the KL's weight in the model's training objective
    seed: int

    @property
    def variational(self) -> bool:
        return self.logvar is not None

    @property
    def sigma(self) -> np.ndarray | None:
        return None if self.logvar is None else np.exp(0.5 * self.logvar)

    @property
    def objective(self) -> float:
        """What training minimised for this image: BCE + beta KL."""
        return self.bce + self.beta * self.kl


@torch.no_grad()
def explain(source: Checkpoint | ConvVAE, image, seed: int = 0, beta: float | None = None) -> Explanation:
    """``image`` through a checkpoint's model (its β from the run's ``train_config``) or a bare model
    (β = 1 unless given), in fp32 on its device: one image of the model's form (``model_input``)
    of uint8 pixels or floats in [0, 1]; a ValueError saying what is wrong otherwise."""
    if isinstance(source, Checkpoint):
        model, beta = source.model, source.train_config.beta if beta is None else beta
    else:
        model, beta = source, 1.0 if beta is None else beta
    device = model_device(model)
    x = model_input(model, image)
    with eval_mode(model), torch.autocast(device.type, enabled=False):
        mu, logvar = model.encode(x)
        eps = None
        if logvar is not None:
            generator = torch.Generator(device=device).manual_seed(seed)
            eps = torch.randn(mu.shape, generator=generator, device=device)
        z = model.reparameterize(mu, logvar, eps)
        logits = model.decode_logits(z)
        logits_mean = logits if logvar is None else model.decode_logits(mu)
    bce, kl = loss.bernoulli_nll(logits, x), loss.kl_to_standard_normal(mu, logvar)

    def first(t: torch.Tensor | None) -> np.ndarray | None:
        return None if t is None else t[0].float().cpu().numpy()

    return Explanation(
        x=as_images(x)[0], mu=first(mu), logvar=first(logvar), eps=first(eps), z=first(z),
        probs=as_images(torch.sigmoid(logits))[0], probs_mean=as_images(torch.sigmoid(logits_mean))[0],
        bce_per_pixel=first(loss.bce_per_pixel(logits, x).sum(1)),
        kl_per_dim=None if logvar is None else first(loss.kl_per_dim(mu, logvar)),
        bce=float(bce[0]), kl=float(kl[0]), loss=float((bce + kl)[0]),  # summed in fp32, as the Draw page's
        beta=float(beta), seed=seed,
    )


def model_input(model: ConvVAE, image) -> torch.Tensor:
    """One image as ``model`` takes it, [1, C, H, W] floats in [0, 1] on its device: of the model's
    form (``VAEConfig.image_shape``), grayscale [H, W], [1, H, W] or [1, 1, H, W], or colour
    [3, H, W] or [1, 3, H, W]; a ValueError in words for any other shape or values."""
    channels, height, width = shape = model.config.image_shape
    given = tuple(image.shape) if hasattr(image, "shape") else np.shape(image)
    accepted = [shape, (1, *shape)] + ([(height, width), (1, height, width)] if channels == 1 else [])
    if given not in accepted:
        raise ValueError(f"expected one {form_words(shape)} image, got an array of shape {given}")
    x = to_float(image if isinstance(image, torch.Tensor) else np.asarray(image), model_device(model))
    x = x.reshape(1, *shape)
    if not (torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1):
        raise ValueError("expected pixels as uint8 or as floats in [0, 1]")
    return x


def source_of(model: ConvVAE) -> dict[str, str]:
    """The code behind each step of ``explain``, read from the running code, so the code shown is
    the code that ran: the layers as ``model`` holds them (the tutorial's are the article's), the
    model's methods and the loss's functions."""

    def code(*functions) -> str:
        return "\n\n".join(textwrap.dedent(inspect.getsource(f)).strip() for f in functions)

    def layers(*names: str) -> str:
        return "\n".join(f"{name} = {getattr(model, name)!r}" for name in names if getattr(model, name) is not None)

    return {
        "encoder": layers("encoder", "fc_mu", "fc_logvar"),
        "encode": code(ConvVAE.encode),
        "reparameterize": code(ConvVAE.reparameterize),
        "decoder": layers("fc_decode", "unflatten", "decoder"),
        "decode": code(ConvVAE.decode_logits, ConvVAE.decode),
        "bce": code(loss.bce_per_pixel, loss.bernoulli_nll),
        "kl": code(loss.kl_per_dim, loss.kl_to_standard_normal),
        "loss": code(loss.vae_loss),
    }


# ---------------------------------------------------------------- command line


def describe(e: Explanation, top: int) -> str:
    """The numbers as text: the loss and its parts, then the ``top`` latent dimensions by KL (an
    autoencoder's by |mu|)."""
    pixels = f"{e.x.size} pixels" if e.x.ndim == 2 else f"{e.x[0].size} pixels x {len(e.x)} colours"
    lines = [f"{'BCE':13} {e.bce:8.2f} nats  -sum_i [x_i log p_i + (1 - x_i) log(1 - p_i)] over {pixels}"]
    if not e.variational:
        lines += ["a plain autoencoder: z = mu, no sigma, no eps and no KL; its loss is the BCE",
                  f"top {min(top, len(e.mu))} latent dimensions by |mu|:", "  dim        mu"]
        order = np.argsort(-np.abs(e.mu))[:top]
        return "\n".join(lines + [f"{j:5d}  {e.mu[j]:8.3f}" for j in order])
    lines += [
        f"{'KL':13} {e.kl:8.2f} nats  sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2) / 2 over {len(e.mu)} dimensions",
        f"{'-ELBO':13} {e.loss:8.2f} nats  = BCE + KL, one sample z = mu + sigma * eps (eps seed {e.seed})",
        f"{'BCE + beta KL':13} {e.objective:8.2f} nats  what training minimised, with this model's beta {e.beta:g}",
        f"top {min(top, len(e.mu))} latent dimensions by KL:",
        "  dim        mu     sigma       eps         z        KL",
    ]
    order = np.argsort(-e.kl_per_dim)[:top]
    sigma = e.sigma
    return "\n".join(lines + [f"{j:5d}  {e.mu[j]:8.3f}  {sigma[j]:8.3f}  {e.eps[j]:8.3f}  {e.z[j]:8.3f}  "
                              f"{e.kl_per_dim[j]:8.3f}" for j in order])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m vae.explain",
        description="One image through a model: mu, sigma, eps and z per latent dimension, the BCE and KL, "
                    "and the -ELBO they add up to (the Inside page's numbers).",
    )
    p.add_argument("checkpoint", help="path to a .pt file written by python -m vae.train")
    p.add_argument("image", help="a PNG or JPEG of one image, prepared for the model's dataset as the Draw page "
                                 "prepares an upload")
    p.add_argument("--seed", type=int, default=0, help="seed of the eps in z = mu + sigma * eps")
    p.add_argument("--top", type=int, default=8, metavar="K", help="how many latent dimensions to list")
    args = p.parse_args(argv)
    if args.top < 1:
        p.error("--top must be >= 1")
    try:
        ckpt = load_checkpoint(args.checkpoint)
        with open(args.image, "rb") as f:
            image = to_model_form(open_image(f.read()), ckpt.dataset)
    except (CheckpointError, ImageDecodeError, EmptyDrawingError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.image} through {args.checkpoint}")
    print(describe(explain(ckpt, image, args.seed), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
