"""``python -m vae.generate CHECKPOINT``: new images from a saved model, from the prior, from a
mixture fitted to where the training images landed, or of one chosen label; and what a drawing
looks like to the model (``--recognise IMAGE``). The Generate and Draw pages, from the shell.

The model's dataset is the one its checkpoint names (``vae.datasets``): its training images are
what the mixture and the labels' Gaussians are fitted to and what the vote is taken among. An
unlabelled dataset has no labels to sample by or to recognise.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from PIL import Image
from tqdm import tqdm

from . import latent, neighbours, samplers
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint
from .data import Dataset, DatasetInfo, DataUnavailableError
from .eval import checkpoint_data
from .images import make_grid
from .preprocess import EmptyDrawingError, ImageDecodeError, open_image, to_model_form

SAMPLERS = ("prior", "mixture", "label")  # and "digit", the label sampler's name from when every model was MNIST's
LISTED_LABELS = 20  # an error lists this many of a dataset's labels


def training_means(ckpt: Checkpoint, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The means [N, d] and labels [N] of every training image of ``data``, from the app's cache on
    disk when it has them (else encoded with a progress bar)."""
    with tqdm(total=len(data.train_images), unit="img", desc="training means", leave=False) as bar:
        means = neighbours.cached_means(ckpt, data.train_images, neighbours.default_cache_dir(),
                                        progress=lambda done, total: bar.update(done - bar.n))
    return means, data.train_labels.numpy()


def label_index(info: DatasetInfo, given: str) -> int:
    """The label that ``given`` names, by its name or else by its index; a ValueError in words for
    an unlabelled dataset or a label it does not have."""
    if not info.labelled:
        raise ValueError(f"{info.name} is unlabelled: it has no labels to choose from "
                         "(use --sampler prior or mixture)")
    if given in info.label_names:
        return info.label_names.index(given)
    if given.isdigit() and int(given) < len(info.label_names):
        return int(given)
    names = ", ".join(info.label_names[:LISTED_LABELS]) + (", …" if len(info.label_names) > LISTED_LABELS else "")
    raise ValueError(f"{info.name} has no label {given!r}; its labels are {names} "
                     f"(or their indices 0 to {len(info.label_names) - 1})")


def sampler(kind: str, latent_dim: int, means, labels, label: int | None, label_names: tuple[str, ...]):
    """A function (n, seed) -> latents [n, d] of the sampler ``kind`` (one of SAMPLERS)."""
    if kind == "prior":
        return lambda n, seed: latent.prior_samples(n, latent_dim, seed=seed)
    if kind == "mixture":
        mixture = samplers.fit_mixture(means)
        return lambda n, seed: samplers.mixture_samples(mixture, n, seed=seed)
    return samplers.fit_digit(means, labels, label, label_names).sample


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m vae.generate",
        description="Save a grid of new images and say how recognisable a sampler's samples are, or say "
                    "which label an image looks like to the model.",
    )
    p.add_argument("checkpoint", help="path to a .pt file written by python -m vae.train")
    p.add_argument("--sampler", choices=(*SAMPLERS, "digit"), default="mixture",
                   help="prior: N(0, I); mixture: a Gaussian mixture over the training means; "
                        "label (or digit): a Gaussian over one label's training means (with --label)")
    p.add_argument("--label", "--digit", dest="label", metavar="LABEL",
                   help="the label for --sampler label, by name or index (a digit of MNIST: 0-9)")
    p.add_argument("--grid", type=int, default=8, help="samples per row and column of the saved grid")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="PNG file for the grid (default: none saved)")
    p.add_argument("--recognise", metavar="IMAGE",
                   help="instead: the verdict on a PNG or JPEG of one image (a labelled dataset's model)")
    args = p.parse_args(argv)
    kind = "label" if args.sampler == "digit" else args.sampler
    if kind == "label" and args.label is None and not args.recognise:
        p.error("--sampler label needs --label LABEL (or --digit)")
    if not 1 <= args.grid <= 32:
        p.error("--grid must be in 1..32")

    try:
        ckpt = load_checkpoint(args.checkpoint, device="cpu")
        info = ckpt.dataset
        if args.recognise and not info.labelled:
            raise ValueError(f"{info.name} is unlabelled: its model has no labels to recognise an image by")
        label = label_index(info, args.label) if kind == "label" and not args.recognise else None
        data = checkpoint_data(ckpt)
        image = None
        if args.recognise:
            with open(args.recognise, "rb") as f:
                image = to_model_form(open_image(f.read()), info)
    except (CheckpointError, DataUnavailableError, ImageDecodeError, EmptyDrawingError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    model = ckpt.model
    means, labels = training_means(ckpt, data)
    vote = neighbours.DigitVote(means, labels, info.label_names) if info.labelled else None
    means, labels = samplers.own_training_means(ckpt, means, labels)

    if image is not None:
        mu, _ = latent.encode(model, image[None])
        print(f"{args.recognise}: {vote.vote(mu[0]).sentence()}")
        return 0

    try:
        sample = sampler(kind, model.latent_dim, means, labels, label, info.label_names)
    except samplers.TooFewExamplesError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.out:
        grid = make_grid(latent.decode(model, sample(args.grid**2, args.seed)), ncol=args.grid, scale=2)
        Image.fromarray(grid).save(args.out)
        print(f"saved {args.grid}x{args.grid} {kind} samples in {args.out}")
    if vote is None:
        return 0
    quality = samplers.sample_quality(model, vote, sample(samplers.QUALITY_SAMPLES, 0))
    words = neighbours.LabelWords(info.label_names)
    shares = "  ".join(f"{name}: {share:.0%}" for name, share in zip(info.label_names, quality.digit_shares))
    print(f"{samplers.QUALITY_SAMPLES:,} {kind} samples recognised as  {shares}")
    print(f"leading label's share of the votes {quality.confidence:.0%}; clear verdict for {quality.sure:.0%}"
          + (f"; recognised as {words.one(label)}: {quality.share_of(label):.0%}" if kind == "label" else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
