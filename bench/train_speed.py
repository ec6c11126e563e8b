"""Training speed and quality of the default model against the seed tutorial's, in one process.

    python bench/train_speed.py            # throughput + time-to-quality (about 18 minutes on 2 cores)
    python bench/train_speed.py --quick    # throughput only (about a minute)

Prints, for both models on the same data and machine:
  * training images/s (steady state, after warm-up), timed in alternating windows, and their ratio;
    also of the default model fed by a plain shuffled DataLoader over float32 tensors, the usual
    tutorial loop, against the uint8 batches cut in memory that vae.train uses; and of its step on
    the 2-sample importance-weighted bound, so that a fine-tune's cost is in plain epochs;
  * test -ELBO after each epoch against the cumulative training time (evaluation excluded),
    the -ELBO reached within a fixed wall-clock budget, and after 10 epochs;
  * short runs of the default recipe sized to a budget (its lr schedule fitted to
    2 or 3 epochs, as a user with little time would train), and how much sooner the default
    model reaches the tutorial's 10-epoch test -ELBO.
Run it while nothing else runs on the machine: a parallel job skews every number here.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from vae.config import TrainConfig
from vae.data import iterate_batches, load_mnist, to_float
from vae.device import autocast_dtype, precision_label, resolve_device
from vae.events import EpochEvent
from vae.model import ConvVAE
from vae.train import FINE_TUNE_SAMPLES, make_optimizer, train, train_step


def training_step(config: TrainConfig, images: torch.Tensor, dataloader: bool = False):
    """A function doing one training step of ``config``'s model, batch size and samples per image
    (``iw_samples``), returning its image count: ``vae.train.train_step`` on uint8 batches cut from
    the tensor in memory and converted on the fly, as ``vae.train`` feeds it; or, with
    ``dataloader``, on batches from a plain ``DataLoader`` over a float32 ``TensorDataset``
    (shuffled, the usual tutorial loop)."""
    device = resolve_device(config.device)
    torch.manual_seed(0)
    model = ConvVAE(config.model_config()).to(device).train()
    optimizer = make_optimizer(model, config)
    autocast = autocast_dtype(config.precision, device)
    generator = torch.Generator().manual_seed(0)
    if dataloader:
        loader = DataLoader(TensorDataset(to_float(images)), batch_size=config.batch_size, shuffle=True,
                            generator=generator)
        float_batches = (x.to(device) for _ in itertools.count() for (x,) in loader)
    else:
        images = images.to(device)
        float_batches = (to_float(b, device) for _ in itertools.count()
                         for b in iterate_batches(images, config.batch_size, generator))

    def step():
        x = next(float_batches)
        train_step(model, optimizer, x, autocast=autocast, iw_samples=config.iw_samples)
        return len(x)

    for _ in range(5):  # warm-up: oneDNN picks and caches its kernels on the first calls
        step()
    return step


def images_per_second(step, seconds: float, device: torch.device) -> float:
    """Steady-state images/s of ``step`` over a window of ``seconds``."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    seen, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        seen += step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def curve(config: TrainConfig, data, label: str) -> list[tuple[int, float, float]]:
    """(epoch, cumulative training seconds, test -ELBO) after every epoch of a full run."""
    points = []

    def on_event(event):
        if isinstance(event, EpochEvent):
            points.append((event.epoch, event.train_seconds, event.test.loss))
            print(f"  {label:9s} epoch {event.epoch:3d}  {event.train_seconds:7.1f}s  "
                  f"test -ELBO {event.test.loss:.2f}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-train-") as folder:  # takes the .resume sidecar too
        train(config, Path(folder) / f"{label}.pt", callback=on_event, data=data)
    return points


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="throughput only")
    p.add_argument("--seconds", type=float, default=10.0, help="timing window per model and round")
    p.add_argument("--rounds", type=int, default=3, help="throughput rounds, each timing both models")
    p.add_argument("--default-epochs", type=int, default=10, help="epochs of the default model's run")
    p.add_argument("--budget", type=float, default=60.0, help="wall-clock budget (s) for the fixed-budget comparison")
    p.add_argument("--short-epochs", type=int, nargs="*", default=[2, 3],
                   help="lengths of the short default runs (the lr schedule fitted to each)")
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    try:
        device = resolve_device(args.device)
    except ValueError as e:
        p.error(str(e))

    data = load_mnist()
    default = TrainConfig(device=args.device, epochs=args.default_epochs)
    tutorial = TrainConfig.tutorial(device=args.device)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}  {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, device {device}, torch {torch.__version__}; training precision: "
          + ", ".join(f"{name} {precision_label(c.precision, device)}"
                      for name, c in (("tutorial", tutorial), ("default", default))))

    # Alternating windows, so that a slow spell of the machine hits every contender alike; the
    # ratios of each round are printed, and the medians of the rounds.
    steps = {"tutorial": training_step(tutorial, data.train_images),
             "default": training_step(default, data.train_images),
             "DataLoader": training_step(default, data.train_images, dataloader=True),
             "IW": training_step(replace(default, iw_samples=FINE_TUNE_SAMPLES), data.train_images)}
    ratios, loader_ratios, iw_ratios = [], [], []
    for round_ in range(1, args.rounds + 1):
        rates = {label: images_per_second(step, args.seconds, device) for label, step in steps.items()}
        ratios.append(rates["default"] / rates["tutorial"])
        loader_ratios.append(rates["default"] / rates["DataLoader"])
        iw_ratios.append(rates["IW"] / rates["default"])
        print(f"throughput round {round_}: tutorial (batch {tutorial.batch_size}) {rates['tutorial']:6.0f} img/s, "
              f"default (batch {default.batch_size}) {rates['default']:6.0f} img/s: {ratios[-1]:.2f}x; "
              f"default via a DataLoader {rates['DataLoader']:6.0f} img/s: {loader_ratios[-1]:.2f}x; "
              f"default on the {FINE_TUNE_SAMPLES}-sample IW bound {rates['IW']:6.0f} img/s: {iw_ratios[-1]:.2f}x",
              flush=True)
    print(f"throughput ratio default/tutorial: {statistics.median(ratios):.2f}x, "
          f"default/the same model via a DataLoader: {statistics.median(loader_ratios):.2f}x, "
          f"an IW epoch costs {1 / statistics.median(iw_ratios):.2f} plain ones (medians of {args.rounds} rounds)")
    if args.quick:
        return

    tut = curve(tutorial, data, "tutorial")
    dflt = curve(default, data, "default")
    target = tut[-1][2]
    # (training seconds, run label) of every finished epoch at or below the tutorial's quality
    reached = [(s, f"epoch {e} of the {args.default_epochs}-epoch run") for e, s, loss in dflt if loss <= target]
    for epochs in args.short_epochs:
        short = curve(TrainConfig(device=args.device, epochs=epochs), data, f"default-{epochs}")
        epoch, seconds, loss = short[-1]
        print(f"  a {epochs}-epoch run of the default recipe: test -ELBO {loss:.2f} after {seconds:.1f}s")
        if loss <= target:
            reached.append((seconds, f"the {epochs}-epoch run"))

    def within(points, budget):
        done = [p for p in points if p[1] <= budget]
        return f"{done[-1][2]:.2f} (epoch {done[-1][0]})" if done else "no epoch finished"

    print(f"\ntest -ELBO after 10 epochs: tutorial {tut[-1][2]:.2f} in {tut[-1][1]:.0f}s; "
          f"default {dflt[min(9, len(dflt) - 1)][2]:.2f} in {dflt[min(9, len(dflt) - 1)][1]:.0f}s")
    print(f"test -ELBO within {args.budget:.0f}s of training: tutorial {within(tut, args.budget)}; "
          f"default {within(dflt, args.budget)}")
    if reached:
        seconds, how = min(reached)
        print(f"default reaches the tutorial's 10-epoch -ELBO ({target:.2f}) after {seconds:.1f}s ({how}) "
              f"vs {tut[-1][1]:.0f}s: {tut[-1][1] / seconds:.1f}x sooner")
    else:
        print(f"default did not reach the tutorial's 10-epoch -ELBO ({target:.2f}) in any run")


if __name__ == "__main__":
    main()
