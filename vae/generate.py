"""``python -m vae.generate CHECKPOINT``: new digits from a saved model, from the prior, from a
mixture fitted to where the training digits landed, or of one chosen digit; and what a drawing
looks like to the model (``--recognise IMAGE``). The Generate and Draw pages, from the shell."""

from __future__ import annotations

import argparse
import sys

import numpy as np
from PIL import Image
from tqdm import tqdm

from . import latent, neighbours, samplers
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint
from .data import DataUnavailableError, load_mnist
from .images import make_grid
from .preprocess import EmptyDrawingError, ImageDecodeError, open_image, to_mnist

SAMPLERS = ("prior", "mixture", "digit")


def training_means(ckpt: Checkpoint, mnist) -> tuple[neighbours.DigitVote, tuple[np.ndarray, np.ndarray]]:
    """The vote over every training digit's mean and the means of the model's own training digits,
    from the app's cache on disk when it has them (else encoded with a progress bar)."""
    with tqdm(total=len(mnist.train_images), unit="img", desc="training means", leave=False) as bar:
        means = neighbours.cached_means(ckpt, mnist.train_images, neighbours.default_cache_dir(),
                                        progress=lambda done, total: bar.update(done - bar.n))
    labels = mnist.train_labels.numpy()
    return neighbours.DigitVote(means, labels), samplers.own_training_means(ckpt, means, labels)


def sampler(kind: str, latent_dim: int, means, labels, digit: int | None):
    """A function (n, seed) -> latents [n, d] of the sampler ``kind`` (one of SAMPLERS)."""
    if kind == "prior":
        return lambda n, seed: latent.prior_samples(n, latent_dim, seed=seed)
    if kind == "mixture":
        mixture = samplers.fit_mixture(means)
        return lambda n, seed: samplers.mixture_samples(mixture, n, seed=seed)
    return samplers.fit_digit(means, labels, digit).sample


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m vae.generate",
        description="Save a grid of new digits and say how recognisable a sampler's samples are, or say "
                    "which digit an image looks like to the model.",
    )
    p.add_argument("checkpoint", help="path to a .pt file written by python -m vae.train")
    p.add_argument("--sampler", choices=SAMPLERS, default="mixture",
                   help="prior: N(0, I); mixture: a Gaussian mixture over the training means; "
                        "digit: a Gaussian over one digit's training means (with --digit)")
    p.add_argument("--digit", type=int, choices=range(10), metavar="0-9", help="the digit for --sampler digit")
    p.add_argument("--grid", type=int, default=8, help="samples per row and column of the saved grid")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="PNG file for the grid (default: none saved)")
    p.add_argument("--recognise", metavar="IMAGE", help="instead: the verdict on a PNG or JPEG of one digit")
    args = p.parse_args(argv)
    if args.sampler == "digit" and args.digit is None and not args.recognise:
        p.error("--sampler digit needs --digit 0-9")
    if not 1 <= args.grid <= 32:
        p.error("--grid must be in 1..32")

    try:
        ckpt = load_checkpoint(args.checkpoint, device="cpu")
        model = ckpt.model
        mnist = load_mnist()
        image = None
        if args.recognise:
            with open(args.recognise, "rb") as f:
                image = to_mnist(open_image(f.read()))
    except (CheckpointError, DataUnavailableError, ImageDecodeError, EmptyDrawingError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    vote, (means, labels) = training_means(ckpt, mnist)

    if image is not None:
        mu, _ = latent.encode(model, image)
        print(f"{args.recognise}: {vote.vote(mu[0]).sentence()}")
        return 0

    try:
        sample = sampler(args.sampler, model.latent_dim, means, labels, args.digit)
    except samplers.TooFewExamplesError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.out:
        grid = make_grid(latent.decode(model, sample(args.grid**2, args.seed)), ncol=args.grid, scale=2)
        Image.fromarray(grid).save(args.out)
        print(f"saved {args.grid}x{args.grid} {args.sampler} samples in {args.out}")
    quality = samplers.sample_quality(model, vote, sample(samplers.QUALITY_SAMPLES, 0))
    shares = "  ".join(f"{d}: {share:.0%}" for d, share in enumerate(quality.digit_shares))
    print(f"{samplers.QUALITY_SAMPLES:,} {args.sampler} samples recognised as  {shares}")
    print(f"leading digit's share of the votes {quality.confidence:.0%}; clear verdict for {quality.sure:.0%}"
          + (f"; recognised as a {args.digit}: {quality.share_of(args.digit):.0%}" if args.sampler == "digit" else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
