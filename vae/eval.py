"""``python -m vae.eval CHECKPOINT``: test-set metrics of a saved model, in nats per image, on the
test split of the dataset its checkpoint names (``vae.datasets``)."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, update_checkpoint
from .data import Dataset, DataUnavailableError
from .device import resolve_device
from .history import IWScore
from .metrics import evaluate, importance_weighted_nll


def checkpoint_data(ckpt: Checkpoint) -> Dataset:
    """The dataset the checkpoint's model was trained on, from the data folder (``vae.datasets``);
    a DataUnavailableError naming it and saying why when it cannot be found or read here."""
    from .datasets import DatasetError, load_dataset

    try:
        return load_dataset(ckpt.dataset.key)
    except (DatasetError, DataUnavailableError) as e:
        raise DataUnavailableError(f"{ckpt.path.name} was trained on {ckpt.dataset.name} (dataset "
                                   f"{ckpt.dataset.key!r}), which cannot be loaded here: {e}") from None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m vae.eval",
        description="Print a checkpoint's test negative ELBO (BCE + KL) and, with --iw, an "
        "importance-weighted estimate of -log p(x).",
    )
    p.add_argument("checkpoint", help="path to a .pt file written by python -m vae.train")
    p.add_argument("--iw", type=int, default=0, metavar="K",
                   help="also estimate -log p(x) with K importance samples per image (e.g. 100)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N test images")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--save", action="store_true",
                   help="store the --iw estimate in the checkpoint's metrics (test_iw), for the app's model cards")
    args = p.parse_args(argv)
    if args.iw < 0 or (args.limit is not None and args.limit < 1) or args.batch_size < 1:
        p.error("--iw must be >= 0, --limit and --batch-size >= 1")
    if args.save and (not args.iw or args.limit is not None):
        p.error("--save needs --iw K on the whole test set (no --limit)")

    try:
        device = resolve_device(args.device)
        ckpt = load_checkpoint(args.checkpoint, device=device)
        model = ckpt.model
        images = checkpoint_data(ckpt).test_images[: args.limit].to(device)
    except (CheckpointError, DataUnavailableError, RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    c = model.config
    print(f"{args.checkpoint}: arch {c.arch}, latent {c.latent_dim}, {sum(t.numel() for t in model.parameters()):,} "
          f"parameters, on {device}, {len(images):,} test images of {ckpt.dataset.name}")
    start = time.perf_counter()
    m = evaluate(model, images, batch_size=args.batch_size)
    if c.variational:
        label, parts = "-ELBO", f"BCE {m.bce:.2f} + KL {m.kl:.2f}"
    else:
        label, parts = "BCE", "a plain autoencoder: the reconstruction of its code, no KL"
    print(f"test {label:6} {m.loss:8.2f} nats  ({parts})  [{time.perf_counter() - start:.1f}s]")
    if args.iw:
        from tqdm import tqdm

        start = time.perf_counter()
        iw_batch = max(1, 20_000 // args.iw)  # about 20k decodes per chunk, whatever K is
        try:
            with tqdm(total=len(images), unit="img", desc=f"IW K={args.iw}", leave=False) as bar:
                nll = importance_weighted_nll(
                    model, images, k=args.iw, batch_size=iw_batch,
                    progress=lambda done, total: bar.update(done - bar.n),
                )
        except ValueError as e:  # an autoencoder
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"test -log p(x) {nll:8.2f} nats  (importance-weighted, K={args.iw})  "
              f"[{time.perf_counter() - start:.1f}s]")
        if args.save:
            metrics = replace(ckpt.metrics, test_iw=IWScore(k=args.iw, nll=nll))
            update_checkpoint(args.checkpoint, metrics=metrics.to_dict())
            print(f"saved test_iw in {args.checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
