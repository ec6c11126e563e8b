"""One model per value of β (and of the latent size), trained through the queue of runs, then the
table of their rate (KL), distortion (BCE) and −ELBO on the test set: β trades one for the other
along a frontier (Alemi et al. 2018, "Fixing a Broken ELBO").

    python -m classroom.sweep --beta 0.25 0.5 1 2 4 8 --epochs 3 --train-size 10000
    python -m classroom.sweep --beta 1 4 --latent-dim 2 8 32 --ray auto      # through a lecture hall's queue
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from classroom.hall import HallQueue, open_queue
from classroom.queue import NAME, RAY_ADDRESS_ENV, QueueError, Run, RunQueue, check_name
from vae.checkpoint import load_checkpoint
from vae.config import TrainConfig
from vae.settings import settings


def plan(betas: list[float], latent_dims: list[int] | None, prefix: str, out: Path,
         base: TrainConfig | None = None) -> list[tuple[str, TrainConfig]]:
    """A (name, config) per combination, ``base``'s settings otherwise (the default recipe's if
    None), named ``PREFIX-beta0p5`` (``-z8`` with latent sizes); ValueError saying why, before
    anything is queued, if one cannot be trained."""
    check_name(prefix)
    runs = []
    for beta, latent_dim in itertools.product(betas, latent_dims or [None]):
        sized = latent_dim is not None
        name = f"{prefix}-beta" + f"{beta:g}".replace(".", "p").replace("+", "") + (f"-z{latent_dim}" if sized else "")
        config = replace(base or TrainConfig(), beta=beta, **({"latent_dim": latent_dim} if sized else {}))
        config.validate()
        if not NAME.fullmatch(name):
            raise ValueError(f"The name {prefix!r} makes the run name {name!r}, longer than a run's name may be "
                             "(64 characters); choose a shorter one.")
        if (out / f"{name}.pt").exists():
            raise ValueError(f"{out / name}.pt exists; choose another name or folder.")
        runs.append((name, config))
    names = [name for name, _ in runs]
    if len(set(names)) < len(names):
        raise ValueError("each value may be given once.")
    return runs


def follow(queue: RunQueue | HallQueue, ids: list[int]) -> list[Run]:
    """A progress bar per run until every run has ended; their final snapshots."""
    bars = [tqdm(desc=queue.snapshot(i).name, unit="step", position=n, dynamic_ncols=True) for n, i in enumerate(ids)]
    try:
        while True:
            runs = [queue.snapshot(i) for i in ids]
            for bar, run in zip(bars, runs):
                bar.total = run.total_steps or None
                bar.n = run.step
                bar.set_postfix_str(run.status if run.status != "running" else f"epoch {run.epoch}/{run.epochs}")
            if not any(run.active for run in runs):
                return runs
            time.sleep(0.5)
    finally:
        for bar in bars:
            bar.close()


def table(runs: list[Run]) -> str:
    """Rate, distortion and −ELBO of each run's kept model on the test set (its file's fp32 metrics)."""
    lines = [f"{'run':<28} {'beta':>6} {'latent':>6} {'status':<9} {'epoch':>5} {'rate KL':>8} {'distortion BCE':>14} "
             f"{'-ELBO':>8}"]
    for run in runs:
        test = load_checkpoint(run.checkpoint).metrics.test if run.checkpoint else None
        kl, bce, loss = (f"{value:.2f}" for value in (test.kl, test.bce, test.loss)) if test is not None else ("-",) * 3
        numbers = f"{kl:>8} {bce:>14} {loss:>8}"
        lines.append(f"{run.name:<28} {run.config.beta:>6g} {run.config.latent_dim:>6} {run.status:<9} "
                     f"{len(run.history.epochs):>5} {numbers}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m classroom.sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("--beta", type=float, nargs="+", required=True, help="the KL weights, a run each")
    p.add_argument("--latent-dim", type=int, nargs="+", help="latent sizes, a run per beta and size "
                   f"(default: the default model's, {TrainConfig.latent_dim})")
    p.add_argument("--epochs", type=int, default=3, help="default: %(default)s")
    p.add_argument("--train-size", type=int, help="train on a random subset of this many images (default: all)")
    p.add_argument("--name", default="sweep", help="the runs' names begin with this (default: %(default)s)")
    p.add_argument("--out", type=Path, default=settings().checkpoint_dir,
                   help="the checkpoint folder (default: %(default)s)")
    p.add_argument("--ray", metavar="ADDRESS",
                   help=f"local: each run a Ray actor here; auto or HOST:PORT: through the queue of the lecture "
                        f"hall on that cluster (default: ${RAY_ADDRESS_ENV}, else here)")
    args = p.parse_args(argv)
    try:
        runs = plan(args.beta, args.latent_dim, args.name, args.out,
                    TrainConfig(epochs=args.epochs, train_size=args.train_size))
    except ValueError as e:  # a ConfigError or QueueError too
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        queue = open_queue(args.out, settings().ray_address if args.ray is None else args.ray)
    except QueueError as e:  # the folder is served by another process, or cannot hold the queue
        print(f"error: {e}", file=sys.stderr)
        return 1
    with queue:
        for notice in queue.notices:
            print(notice, file=sys.stderr)
        print(f"Training {len(runs)} runs {queue.where} -> {args.out}")
        try:
            ids = [run.id for run in queue.submit_all(runs)]
        except QueueError as e:  # the store cannot be written
            print(f"error: {e}", file=sys.stderr)
            return 1
        try:
            ended = follow(queue, ids)
        except KeyboardInterrupt:
            for i in ids:
                queue.stop(i)
            print(table([queue.snapshot(i) for i in ids if queue.wait(i)]))
            print("Interrupted: the runs were stopped, their best checkpoints kept.", file=sys.stderr)
            return 130
        print(table(ended))
    return 0 if all(run.status == "finished" for run in ended) else 1


if __name__ == "__main__":
    sys.exit(main())
