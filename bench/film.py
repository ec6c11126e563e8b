"""What the training film costs: recording it during training, building its player, playing it.

    .venv/bin/python bench/film.py                 # all three parts
    .venv/bin/python bench/film.py --part record   # or figure, browser, tsne or clusters

- record: the same short run with and without the film, alternating, in one process: the ratio of
  their training times (the film's frames are taken outside the timed steps, so the whole run's
  wall time is compared), and the time of one frame.
- figure: building the player's figure of the bundled default's film (its layout, the figure and
  its JSON, as st.plotly_chart sends it), against the loss-curve figure of the same history.
- browser: the Latent map's Training view in headless Chromium; Play is pressed and the time to the
  last frame gives the frames per second the browser plays at.
- tsne: laying out the bundled default's film with the aligned t-SNE (``vae.film.aligned_tsne``),
  against one whole t-SNE run of its last frame alone.
- clusters: how far apart the digits are in each view of the default's film: per frame, the share
  of the 500 digits whose 5 nearest neighbours (5-fold cross-validated) vote for their own label, in
  the latent itself, on the PCA film map, on an LDA plane fitted at the last frame, on a t-SNE map
  of the last frame alone, and on the aligned t-SNE film map.
Run it with nothing else on the machine; figures go to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import plotly.io as pio

from harness import BUNDLED as DEFAULT
from studio.figures import FILM_FRAME_MS, film_figure, loss_figure
from vae.checkpoint import load_checkpoint
from vae.compare import elbo_curve
from vae.config import TrainConfig
from vae.data import MNIST_INFO, load_mnist
from vae.device import resolve_device
from vae.film import FilmRecorder, aligned_tsne, epoch_label, film_layout, kept_frame, neighbour_agreement
from vae.latent import tsne
from vae.train import train


def bench_record(epochs: int, rounds: int) -> None:
    data = load_mnist()
    config = TrainConfig(epochs=epochs, seed=0)
    times = {True: [], False: []}
    with tempfile.TemporaryDirectory() as folder:
        for r in range(rounds):
            for film in (r % 2 == 0, r % 2 == 1):  # alternate which goes first
                path = Path(folder) / f"run-{r}-{film}.pt"
                start = time.perf_counter()
                train(config, path, data=data, film=film)
                times[film].append(time.perf_counter() - start)
                print(f"  round {r + 1}: {'with' if film else 'without'} the film {times[film][-1]:.1f} s", flush=True)
    with_film, without = statistics.median(times[True]), statistics.median(times[False])
    print(f"record: {epochs}-epoch run, median of {rounds}: with film {with_film:.1f} s, without {without:.1f} s, "
          f"ratio {with_film / without:.3f}")

    ckpt = load_checkpoint(DEFAULT)
    model = ckpt.model
    recorder = FilmRecorder(data.test_images, data.test_labels, model.latent_dim, resolve_device("auto"))
    recorder.record(model, 0.0)  # warm-up
    start = time.perf_counter()
    for i in range(20):
        recorder.record(model, float(i + 1))
    per_frame = (time.perf_counter() - start) / 20
    frames = len(ckpt.film.epochs)
    print(f"record: one frame {per_frame * 1000:.1f} ms; a {frames}-frame film costs {per_frame * frames:.1f} s of "
          f"the default's training")


def bench_figure(rounds: int) -> None:
    ckpt = load_checkpoint(DEFAULT)
    epochs, _, loss = elbo_curve(ckpt.history)
    film, curve = ckpt.film, list(zip(epochs, loss))
    film_figure(film, film_layout(film), MNIST_INFO.label_names, curve)  # imports and first-call costs out of the way
    loss_figure(ckpt.history)
    builds, references = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        figure = film_figure(film, film_layout(film), MNIST_INFO.label_names, curve)
        spec = pio.to_json(figure.to_dict(), validate=False)
        builds.append(time.perf_counter() - start)
        start = time.perf_counter()
        pio.to_json(loss_figure(ckpt.history).to_dict(), validate=False)
        references.append(time.perf_counter() - start)
    build, reference = statistics.median(builds), statistics.median(references)
    print(f"figure: the {film.frames}-frame player {build * 1000:.0f} ms ({len(spec) / 1e6:.2f} MB of JSON), "
          f"the loss curves {reference * 1000:.0f} ms: ratio {build / reference:.2f} (median of {rounds})")


def bench_browser(rounds: int) -> None:
    from playwright.sync_api import sync_playwright

    from harness.browser import (
        CHROMIUM_ARGS,
        FIRST_VISIT_MS,
        PLAY_FILM_JS,
        open_app,
        open_page,
        require_chromium,
        settle,
        streamlit_server,
    )

    with tempfile.TemporaryDirectory() as folder:
        shutil.copy2(DEFAULT, Path(folder) / "default.pt")
        with streamlit_server(Path(folder), Path(folder) / "server.log") as (url, _), sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(require_chromium()), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            open_app(page, url)
            open_page(page, "Latent map")
            page.get_by_text("Training film", exact=True).click()
            page.locator(".st-key-map_film_chart_0 .slider-container").wait_for(timeout=FIRST_VISIT_MS)
            settle(page)
            rates = []
            for _ in range(rounds):
                result = page.evaluate(PLAY_FILM_JS, ["From the start"])
                rates.append(result["frames"] / (result["elapsed_ms"] / 1000))
                print(f"  {result['frames']} frames in {result['elapsed_ms']:.0f} ms "
                      f"({rates[-1]:.1f} frames/s), map moved: {result['moved']}", flush=True)
            browser.close()
    print(f"browser: plays at {statistics.median(rates):.1f} frames/s (median of {rounds}; "
          f"the figure asks for {1000 / FILM_FRAME_MS:.0f})")


def bench_tsne(rounds: int) -> None:
    film = load_checkpoint(DEFAULT).film
    last = film.means[-1].astype("float32")
    films, references = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        aligned_tsne(film.means)
        films.append(time.perf_counter() - start)
        start = time.perf_counter()
        tsne(last)
        references.append(time.perf_counter() - start)
    whole, one = statistics.median(films), statistics.median(references)
    print(f"tsne: the aligned t-SNE of {film.frames} frames of {len(film.indices)} digits {whole:.1f} s, one t-SNE "
          f"of the last frame {one:.2f} s: ratio {whole / one:.1f} (median of {rounds})")


def bench_clusters() -> None:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    ckpt = load_checkpoint(DEFAULT)
    film, labels = ckpt.film, ckpt.film.labels
    means = film.means.astype("float32")
    lda = LinearDiscriminantAnalysis(n_components=2).fit(means[-1], labels)
    views = {f"in the {film.latent_dim}-D latent": means, "film map (PCA)": film_layout(film, "pca"),
             "LDA fitted at the last frame": [lda.transform(frame) for frame in means],
             "t-SNE of the last frame alone": None, "film map (aligned t-SNE)": film_layout(film, "tsne")}
    columns = {name: neighbour_agreement(points, labels) for name, points in views.items() if points is not None}
    last_alone = neighbour_agreement(tsne(means[-1])[None], labels)[0]
    kept = kept_frame(ckpt)
    print("clusters: share of digits whose 5 nearest neighbours vote for their own label (5-fold CV)")
    print("| frame | " + " | ".join(views) + " |")
    print("| --- |" + " ---: |" * len(views))
    for i in sorted({0, film.frame_at(1), film.frame_at(6), kept}):
        cells = [f"{columns[name][i]:.2f}" if name in columns else (f"{last_alone:.2f}" if i == kept else "")
                 for name in views]
        print(f"| epoch {epoch_label(film.epochs[i])}{' (kept)' * (i == kept)} | " + " | ".join(cells) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=("record", "figure", "browser", "tsne", "clusters", "all"), default="all")
    p.add_argument("--epochs", type=int, default=3, help="epochs of each recording run")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    if args.part in ("record", "all"):
        bench_record(args.epochs, args.rounds)
    if args.part in ("figure", "all"):
        bench_figure(max(5, args.rounds))
    if args.part in ("browser", "all"):
        bench_browser(args.rounds)
    if args.part in ("tsne", "all"):
        bench_tsne(args.rounds)
    if args.part in ("clusters", "all"):
        bench_clusters()


if __name__ == "__main__":
    main()
