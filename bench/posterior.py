"""What Inside's "Why variational" costs on this machine, against a model pass timed in the same rounds.

    .venv/bin/python bench/posterior.py            # 10 rounds, about a minute

Timed, median of the rounds, one torch thread as the pages run:
  grid          ``posterior_grid`` of a new test digit on latent2d (made once per digit and model, then kept)
  bounds        ``iw_bounds`` (K = 1, 10, 100, 1000 from 1,000 samples) of a new test digit on the default model
  sigma         ``sigma_scan`` (40 scales x 32 samples) of a new test digit on the default model
  click         what a click on the plane computes: the probe at the new z and the plane's figure
  model         the reference: encode one test digit and decode its mean (the Draw page's model work)
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from harness import BUNDLED, BUNDLED_DIR
from studio.figures import posterior_plane_figure
from vae import load_checkpoint, posterior
from vae.data import load_mnist


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args()
    torch.set_num_threads(1)
    mnist = load_mnist()
    latent2d, default = load_checkpoint(BUNDLED_DIR / "latent2d.pt"), load_checkpoint(BUNDLED)
    digits = [mnist.test_images[i].numpy() for i in range(100, 100 + args.rounds + 1)]
    grid = posterior.posterior_grid(latent2d.model, digits[0])  # warm: first calls build oneDNN kernels
    posterior.iw_bounds(default.model, digits[0])
    posterior.sigma_scan(default.model, digits[0])
    rng = np.random.default_rng(0)

    def click():
        z = grid.q_mean + rng.normal(0, 0.05, 2).astype(np.float32)
        posterior.probe(latent2d.model, digits[0], z)
        posterior_plane_figure(grid, z).to_plotly_json()

    def model():
        with torch.no_grad():
            mu, _ = default.model.encode(torch.as_tensor(digits[0], dtype=torch.float32)[None, None] / 255)
            default.model.decode(mu)

    times = {name: [] for name in ("grid", "bounds", "sigma", "click", "model")}
    for image in digits[1:]:  # round-robin, so that every scenario shares the machine's noise
        times["grid"].append(timed(lambda image=image: posterior.posterior_grid(latent2d.model, image)))
        times["bounds"].append(timed(lambda image=image: posterior.iw_bounds(default.model, image)))
        times["sigma"].append(timed(lambda image=image: posterior.sigma_scan(default.model, image)))
        times["click"].append(timed(click))
        times["model"].append(timed(model))
    reference = statistics.median(times["model"])
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread, "
          f"median of {args.rounds}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:8} {median * 1000:9.1f} ms  (max {max(values) * 1000:.1f})  {median / reference:8.1f}x model")


if __name__ == "__main__":
    main()
