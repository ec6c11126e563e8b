"""2-D maps of the test set's latents: scikit-learn's t-SNE (the reference: what the Latent map ran
before) against openTSNE and UMAP, on the same points in one process.

    python bench/projections.py              # 10,000 test digits (about 5 minutes on 2 quiet cores)
    python bench/projections.py --quick      # 2,000 test digits (about a minute)
    python bench/projections.py --points 5000
    python bench/projections.py --crossover  # openTSNE's Barnes-Hut vs FFT repulsion by map size

Prints, for each method on the same latents (posterior means of the default model):
  * seconds (wall clock, and CPU seconds of all threads: less skewed by other jobs on the machine)
    and the speed-up over scikit-learn's t-SNE;
  * quality: k-NN label agreement (of each digit's 10 nearest neighbours on the map, the fraction
    with its label; chance is about 0.1, and the same measure in the latent space itself is printed
    for comparison) and scikit-learn's trustworthiness (are the map's neighbours neighbours in the
    latent space) on a fixed 2,000-point sample.
"openTSNE (app)" is the Latent map's own path, ``studio``'s cached projection (``vae.latent.tsne`` on
one thread), timed cold, then the same request again, served from that cache, and once more after the
in-memory cache is cleared, as on a restarted server: from the map kept on disk (a fresh temporary
folder, so that the cold run is cold); "2 threads" is the
same t-SNE on two. UMAP's first call in a process compiles its numba code (cold; numba keeps part of
it on disk, so a first-ever run is slower still); the second call is the warm figure.
--crossover times ``vae.latent.tsne`` with each repulsion method at several sizes (``FFT_FROM``).
Run it while nothing else runs on the machine: a parallel job skews every wall-clock number here.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from streamlit.logger import set_log_level

from studio import analysis, resources
from vae import latent
from vae.settings import configure

TRUST_SAMPLE = 2000  # trustworthiness needs all pairwise distances: a fixed sample keeps it quick
PERPLEXITY, SEED = 30.0, 0


def sklearn_tsne(latents: np.ndarray) -> np.ndarray:
    """scikit-learn's Barnes-Hut t-SNE with the Latent map's former settings (the reference)."""
    from sklearn.manifold import TSNE

    perplexity = min(PERPLEXITY, (len(latents) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=SEED).fit_transform(latents)


def opentsne_defaults(latents: np.ndarray) -> np.ndarray:
    """openTSNE with its own defaults (Annoy neighbours, FFT gradients at full grid resolution) on
    every core."""
    from openTSNE import TSNE

    return np.asarray(TSNE(perplexity=PERPLEXITY, negative_gradient_method="fft", n_jobs=-1,
                           random_state=SEED).fit(latents))


def two_threads(latents: np.ndarray) -> np.ndarray:
    return latent.tsne(latents, PERPLEXITY, SEED, threads=2)


def umap_map(latents: np.ndarray) -> np.ndarray:
    """UMAP with its defaults (15 neighbours, min_dist 0.1), seeded (which makes it single-threaded)."""
    import umap

    return umap.UMAP(n_components=2, random_state=SEED, n_jobs=1).fit_transform(latents)


def timed(fn, *args, **kwargs):
    """(result, wall seconds, CPU seconds of the whole process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def trustworthiness(latents: np.ndarray, coords: np.ndarray) -> float:
    from sklearn.manifold import trustworthiness as score

    sample = np.random.default_rng(SEED).permutation(len(latents))[:TRUST_SAMPLE]
    return float(score(latents[sample], coords[sample], n_neighbors=10))


def crossover(points: np.ndarray, sizes=(1000, 2500, 5000)) -> None:
    """Seconds of ``vae.latent.tsne`` with Barnes-Hut and with FFT repulsion, per map size."""
    print(f"{'points':>7s} {'Barnes-Hut s':>13s} {'FFT s':>8s} {'FFT speed-up':>13s}   (CPU s: BH, FFT)")
    for n in sizes:
        sample = points[latent.test_subset(n, total=len(points))]
        (_, bh, bh_cpu), (_, fft, fft_cpu) = (
            timed(latent.tsne, sample, PERPLEXITY, SEED, gradient=g) for g in ("bh", "fft"))
        print(f"{n:7,d} {bh:13.1f} {fft:8.1f} {bh / fft:12.2f}x   ({bh_cpu:.1f}, {fft_cpu:.1f})", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--points", type=int, default=10_000, help="test digits to project (a fixed subset)")
    p.add_argument("--quick", action="store_true", help="2,000 test digits")
    p.add_argument("--crossover", action="store_true", help="Barnes-Hut vs FFT t-SNE at 1,000-5,000 points")
    p.add_argument("--checkpoint", default=str(resources.default_checkpoint()))
    args = p.parse_args()
    n = 2000 if args.quick else args.points
    set_log_level("error")  # no "missing ScriptRunContext" warnings: studio's caches work without a server

    import openTSNE
    import sklearn
    import umap  # imported here, so its import time is not counted as UMAP's first call

    print(f"{time.strftime('%Y-%m-%d %H:%M')}  {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"scikit-learn {sklearn.__version__}, openTSNE {openTSNE.__version__}, umap-learn {umap.__version__}")
    ckpt = resources.load(args.checkpoint)
    (mu, _), seconds, _ = timed(analysis.test_encodings, ckpt)  # the app's cached encodings
    indices = latent.test_subset(n)
    points, labels = mu[indices], resources.dataset("mnist").test_labels.numpy()[indices]
    print(f"{n:,} test digits, latent {points.shape[1]}-D (encoded in {seconds:.1f} s); "
          f"k-NN label agreement in the latent space: {latent.label_agreement(points, labels):.3f}\n")
    if args.crossover:
        crossover(mu)
        return

    def app_projection(_points):  # the same points: the app's fixed subset of its cached encodings
        return analysis._projection(ckpt, n, "tsne", PERPLEXITY, SEED)[1].coords

    def app_after_restart(_points):
        analysis._projection.clear()
        return app_projection(_points)

    runs = [
        ("scikit-learn t-SNE (ref)", sklearn_tsne),
        ("openTSNE defaults", opentsne_defaults),
        ("openTSNE (app), cold", app_projection),
        ("openTSNE (app), cached", app_projection),
        ("openTSNE (app), from disk", app_after_restart),
        ("openTSNE (app), 2 threads", two_threads),
        ("UMAP, 1st call (JIT)", umap_map),
        ("UMAP, warm", umap_map),
    ]
    print(f"{'method':26s} {'wall s':>8s} {'CPU s':>7s} {'speed-up':>10s} {'k-NN agree':>11s} {'trust':>7s}")
    reference = None
    with tempfile.TemporaryDirectory(prefix="bench-tsne-") as folder:
        configure(data_dir=Path(folder))
        for name, fn in runs:
            coords, wall, cpu = timed(fn, points)
            reference = reference or wall
            print(f"{name:26s} {wall:8.3f} {cpu:7.1f} {reference / wall:9,.1f}x "
                  f"{latent.label_agreement(coords, labels):11.3f} {trustworthiness(points, coords):7.3f}", flush=True)


if __name__ == "__main__":
    main()
