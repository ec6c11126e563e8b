"""A film of a latent space forming: frames of a fixed set of test images' posteriors, recorded
while a model trains, stored in its checkpoint and replayed by the app, ``python -m vae.film``
or a GIF.

Each frame holds the images' posterior means, the KL of each latent dimension, the count of
active units, the decodings of 16 fixed prior latents (the same z in every frame, so samples are
seen to sharpen) and, for a 2-D latent, the decoded manifold over [-3, 3]². Frames are taken
before the first step, at ``EPOCH_ONE_FRACTIONS`` of epoch 1 (where most of the organising
happens) and after every epoch; the frame after epoch k is the model saved if epoch k is kept.
The frames' arrays, as a checkpoint stores them, are a ``vae.film_state.Film``.
"""

from __future__ import annotations

import argparse
import colorsys
import logging
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, update_checkpoint
from .data import default_data_dir, to_float
from .files import write_atomically
from .film_state import FRAME_ARRAYS, PRIOR_SAMPLES, Film
from .images import make_grid
from .latent import as_images, grid_points, kl_per_dimension, knn_accuracy
from .model import eval_mode

FILM_IMAGES = 500  # shared equally among the labels: enough to see clusters, small enough to store every frame
FILM_SEED = 0  # the same images and prior latents for every model, so films can be compared
EPOCH_ONE_FRACTIONS = (1 / 16, 1 / 8, 1 / 4, 1 / 2)
ACTIVE_VARIANCE = 0.01  # a unit is active when Var_x E[z_d | x] exceeds this (Burda et al., 2016)
MANIFOLD_SIDE, MANIFOLD_SPAN = 12, 3.0  # a 12 x 12 grid of decodings over [-3, 3]² for 2-D latents
MAX_BYTES = 4 * 2**20  # a film is thinned (every other epoch frame) to stay under this
LAYOUTS = ("pca", "tsne")  # how a film of more than two latent dimensions is laid out on the map
TSNE_PERPLEXITY, TSNE_SEED = 30.0, 0
# Each frame after the first starts from the previous frame's map and runs this many t-SNE steps:
# enough for the map to follow the model (bench/film.py), few enough for a film in well under a minute.
TSNE_FRAME_STEPS = 100
# Up to ten labels: Okabe and Ito's palette, told apart with the common colour-vision deficiencies,
# then Paul Tol's wine and a grey. Black comes late: it hides the other points' outlines.
QUALITATIVE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7",
               "#56B4E9", "#F0E442", "#000000", "#882255", "#999999"]


def label_colours(n: int) -> list[str]:
    """One colour per label of ``n``: the colour-blind-safe ``QUALITATIVE`` palette for ten or
    fewer; for more, ``n`` hues evenly round the colour wheel, alternately darker and lighter so
    that neighbouring hues still differ (no palette keeps dozens of labels apart for everyone)."""
    if n <= len(QUALITATIVE):
        return QUALITATIVE[:n]
    rgbs = [colorsys.hls_to_rgb(i / n, 0.36 if i % 2 else 0.52, 0.8) for i in range(n)]
    return ["#" + "".join(f"{round(255 * c):02X}" for c in rgb) for rgb in rgbs]


def film_digits(test_labels, total: int = FILM_IMAGES, seed: int = FILM_SEED) -> np.ndarray:
    """Sorted test-set indices of a fixed, balanced sample of about ``total`` images, the same for
    every model: ``total // labels`` of each label in the test set (at least one, at most all it
    has), drawn with ``seed``; an unlabelled set's one label gives ``total`` images, or all."""
    labels = np.asarray(test_labels)
    present = np.unique(labels)
    per_label = max(1, total // len(present))
    rng = np.random.default_rng(seed)
    picks = []
    for label in present:
        own = np.flatnonzero(labels == label)
        picks.append(rng.choice(own, min(per_label, len(own)), replace=False))
    return np.sort(np.concatenate(picks))


def used_dimensions(means: np.ndarray) -> np.ndarray:
    """Which latent dimensions [d] the model uses: those whose posterior mean varies over the
    images' ``means`` [n, d] by more than ``ACTIVE_VARIANCE``; the rest carry nothing (KL ≈ 0)."""
    return np.asarray(means, dtype=np.float64).var(axis=0) > ACTIVE_VARIANCE


def active_units(means: np.ndarray) -> int:
    """How many latent dimensions the model uses (``used_dimensions``)."""
    return int(used_dimensions(means).sum())


def kept_frame(ckpt: Checkpoint) -> int:
    """The frame of the checkpoint's film (it has one) taken at its kept epoch; the last frame when
    its metrics name no epoch."""
    return ckpt.film.frame_at(np.inf if ckpt.metrics.epoch is None else ckpt.metrics.epoch)


def kept_active_units(ckpt: Checkpoint) -> int:
    """Active units of the checkpoint's kept epoch, from its film's frame of that epoch (it has a film)."""
    return int(ckpt.film.active_units[kept_frame(ckpt)])


def epoch_one_steps(steps_per_epoch: int) -> dict[int, float]:
    """{step within epoch 1 (1-based): its fraction} for the inside-epoch-1 frames: each is taken
    after the first step by which that share of the epoch's steps is done (a short epoch gives fewer)."""
    marks = {}
    for fraction in EPOCH_ONE_FRACTIONS:
        step = int(np.ceil(fraction * steps_per_epoch))
        if step < steps_per_epoch and step not in marks:
            marks[step] = fraction
    return marks


def epoch_label(epoch: float) -> str:
    """0, 1/16, 1/8, 1/4, 1/2, 1, 2, ...: a film frame's epoch as people say it."""
    if epoch == int(epoch):
        return str(int(epoch))
    return str(Fraction(float(epoch)).limit_denominator(64))


class FilmRecorder:
    """Takes frames of a model as it trains; ``film`` is what has been recorded so far. The test
    images filmed are ``film_digits``' of ``test_labels``; the prior samples and the manifold come
    in the model's own image form (``VAEConfig.image_shape``), grayscale or colour."""

    def __init__(self, test_images: torch.Tensor, test_labels: torch.Tensor, latent_dim: int,
                 device: torch.device, film: Film | None = None):
        self.indices = film_digits(test_labels)
        self.labels = np.asarray(test_labels)[self.indices]
        self.images = to_float(test_images[torch.from_numpy(self.indices)], device)
        generator = torch.Generator().manual_seed(FILM_SEED)
        self.prior_z = torch.randn(PRIOR_SAMPLES, latent_dim, generator=generator).to(device)
        span = (-MANIFOLD_SPAN, MANIFOLD_SPAN)
        self.grid_z = torch.from_numpy(grid_points(span, span, MANIFOLD_SIDE)).to(device) if latent_dim == 2 else None
        self.frames: list[dict] = []
        if film is not None:  # a resumed run continues its film
            self.frames = [{name: getattr(film, name)[i] if getattr(film, name) is not None else None
                            for name in FRAME_ARRAYS} for i in range(film.frames)]

    @torch.no_grad()
    def record(self, model: torch.nn.Module, epoch: float) -> None:
        """A frame of ``model`` as it is now, in fp32 whatever the training precision. An
        autoencoder's frame has no log-variances and a KL of 0 in every dimension."""
        with eval_mode(model):
            means, logvars = (None if t is None else t.float().cpu().numpy() for t in model.encode(self.images))
            frame = {
                "epochs": float(epoch),
                "means": means.astype(np.float16),
                "logvars": logvars.astype(np.float16) if logvars is not None and means.shape[1] == 2 else None,
                "kl_per_dim": (kl_per_dimension(means, logvars) if logvars is not None
                               else np.zeros(means.shape[1])).astype(np.float32),
                "active_units": active_units(means),
                "prior_samples": as_images(model.decode(self.prior_z)),
                "manifold": None,
            }
            if self.grid_z is not None:
                tiles = as_images(model.decode(self.grid_z))
                frame["manifold"] = make_grid(tiles, ncol=MANIFOLD_SIDE, pad=0).astype(np.float32) / 255.0
        self.frames.append(frame)

    def thin(self, keep_epoch: int | None) -> None:
        """While the film is over ``MAX_BYTES``, drop every other whole-epoch frame after epoch 1,
        keeping the newest and that of ``keep_epoch`` (the kept model's), so no film is unbounded."""
        while self.frames and len(self.frames) * _frame_bytes(self.frames[-1]) > MAX_BYTES:
            droppable = [i for i, f in enumerate(self.frames[:-1])
                         if f["epochs"] >= 2 and f["epochs"] != keep_epoch]
            if not droppable:
                return
            drop = set(droppable[::2])
            self.frames = [f for i, f in enumerate(self.frames) if i not in drop]

    def film(self) -> Film | None:
        if not self.frames:
            return None
        stacked = {name: None if self.frames[0][name] is None else np.stack([f[name] for f in self.frames])
                   for name in self.frames[0]}
        stacked["epochs"] = stacked["epochs"].astype(np.float64)
        stacked["active_units"] = stacked["active_units"].astype(np.int64)
        return Film(indices=self.indices, labels=self.labels, **stacked)


def _frame_bytes(frame: dict) -> int:
    """Stored size of one frame (images as uint8)."""
    sizes = {"prior_samples": 1, "manifold": 1}
    return sum(np.asarray(v).size * sizes.get(k, np.asarray(v).itemsize) for k, v in frame.items() if v is not None)


# ---------------------------------------------------------------- where each frame's images go


def procrustes_align(source: np.ndarray, target: np.ndarray, scale: bool = True) -> np.ndarray:
    """``source`` points [n, 2] rotated or reflected (and with ``scale``, scaled) about their
    centroid, moved onto ``target``'s, to lie closest to ``target`` in least squares: an orthogonal
    Procrustes fit."""
    from scipy.linalg import orthogonal_procrustes

    src = source - source.mean(axis=0)
    tgt = target - target.mean(axis=0)
    norm = float((src**2).sum())
    if norm < 1e-12:
        return np.broadcast_to(target.mean(axis=0), source.shape).astype(np.float32)
    rotation, singular_sum = orthogonal_procrustes(src, tgt)
    factor = singular_sum / norm if scale else 1.0
    return (src @ rotation * factor + target.mean(axis=0)).astype(np.float32)


def film_layout(film: Film, method: str = "pca", known: np.ndarray | None = None, cache_dir=None,
                progress=None) -> np.ndarray:
    """Map positions [F, n, 2] of the film's images in every frame. A 2-D latent: its raw means,
    whatever ``method``. More dimensions: "pca", two linear directions per frame (``pca_layout``,
    fast enough for a live run), or "tsne", the aligned t-SNE map in which the labels' clusters
    can be seen (``tsne_layout``: the film's stored one, else ``cache_dir``'s, else made, tens of
    seconds, with ``progress(done, total)`` per frame)."""
    if film.latent_dim == 2:
        return film.means.astype(np.float32)
    if method == "pca":
        return pca_layout(film, known)
    if method == "tsne":
        return tsne_layout(film, cache_dir, progress)
    raise ValueError(f"method must be one of {LAYOUTS}, got {method!r}")


def pca_layout(film: Film, known: np.ndarray | None = None) -> np.ndarray:
    """Each frame's PCA, scaled to a common spread (unit RMS distance from the centre, so the
    untrained model's tiny cloud is as readable as the trained one) and rotated or reflected onto
    the previous frame by ``procrustes_align``, so images move smoothly instead of flipping and
    spinning (a PCA's axes have no fixed sign or order between frames). Adding frames never moves
    earlier ones, so a live view and the replay agree, and ``known``, the layout of this film's
    first frames made before, is kept and only the frames after it are laid out."""
    means = film.means.astype(np.float32)
    layout = np.empty((film.frames, means.shape[1], 2), dtype=np.float32)
    done = len(known) if known is not None and len(known) <= film.frames else 0
    if done:
        layout[:done] = known
    for i in range(done, film.frames):
        centred = means[i] - means[i].mean(axis=0)
        directions = np.linalg.eigh(centred.T @ centred)[1][:, :-3:-1]  # PCA's two main axes
        coords = centred @ directions
        coords /= max(float(np.sqrt((coords**2).sum(axis=1).mean())), 1e-12)
        layout[i] = coords if i == 0 else procrustes_align(coords, layout[i - 1], scale=False)
    return layout


def tsne_layout(film: Film, cache_dir=None, progress=None) -> np.ndarray:
    """The aligned t-SNE map [F, n, 2]: ``stored_tsne_layout``'s, else ``aligned_tsne``'s, then
    kept in ``cache_dir``."""
    layout = stored_tsne_layout(film, cache_dir)
    if layout is not None:
        return layout
    layout = aligned_tsne(film.means, progress)
    if cache_dir is not None:
        key = _tsne_key(film)
        try:
            write_atomically(_tsne_path(cache_dir, key), lambda f: np.savez(f, key=key, layout=layout))
        except OSError as e:
            logging.getLogger(__name__).warning("Could not keep the film's t-SNE map in %s: %s", cache_dir, e)
    return layout


def stored_tsne_layout(film: Film, cache_dir=None) -> np.ndarray | None:
    """The film's t-SNE map without making it: its own (``film.tsne``), else the one kept in
    ``cache_dir`` if that was made for exactly these frames and settings; None for a missing,
    damaged or foreign file."""
    if film.tsne is not None:
        return film.tsne
    if cache_dir is None:
        return None
    key = _tsne_key(film)
    try:
        with np.load(_tsne_path(cache_dir, key), allow_pickle=False) as stored:
            stored_key, layout = str(stored["key"]), stored["layout"]
    except (OSError, ValueError, KeyError):
        return None
    ok = stored_key == key and layout.shape == (*film.means.shape[:2], 2) and np.isfinite(layout).all()
    return layout.astype(np.float32) if ok else None


def _tsne_path(cache_dir, key: str) -> Path:
    return Path(cache_dir) / f"film-tsne-{key[:32]}.npz"


def _tsne_key(film: Film) -> str:
    """What a film's t-SNE map depends on: its means and the settings (openTSNE's version too)."""
    import hashlib
    import importlib.metadata

    settings = (film.means.shape, TSNE_PERPLEXITY, TSNE_SEED, TSNE_FRAME_STEPS,
                importlib.metadata.version("openTSNE"))
    return hashlib.sha256(np.ascontiguousarray(film.means).tobytes() + repr(settings).encode()).hexdigest()


def aligned_tsne(means: np.ndarray, progress=None) -> np.ndarray:
    """t-SNE maps [F, n, 2] of frames of latents ``means`` [F, n, d], each started from the one
    before: the first is a whole t-SNE run (PCA start, early exaggeration), each later one
    ``TSNE_FRAME_STEPS`` steps of gradient descent on its own frame's affinities from where the
    previous frame's images lie. So an image moves only as far as the model's change moves it, and
    the film shows clusters forming instead of a new, unrelated map at every frame. One thread: a
    second slowed t-SNE down whenever the other core was busy (see ``vae.latent.tsne``)."""
    from openTSNE import TSNEEmbedding, affinity, initialization

    frames, layout = len(means), []
    for i in range(frames):
        latents = np.asarray(means[i], dtype=np.float32)
        affinities = affinity.PerplexityBasedNN(latents, perplexity=min(TSNE_PERPLEXITY, (len(latents) - 1) / 3),
                                                method="exact", n_jobs=1, random_state=TSNE_SEED)
        start = initialization.pca(latents, random_state=TSNE_SEED) if i == 0 else layout[-1]
        embedding = TSNEEmbedding(start.astype(np.float64), affinities, negative_gradient_method="bh", n_jobs=1,
                                  random_state=TSNE_SEED)
        if i == 0:
            embedding = embedding.optimize(250, exaggeration=12, momentum=0.5).optimize(500, momentum=0.8)
        else:
            embedding = embedding.optimize(TSNE_FRAME_STEPS, momentum=0.8)
        layout.append(np.array(embedding, dtype=np.float32))
        if progress is not None:
            progress(i + 1, frames)
    return np.stack(layout)


def neighbour_agreement(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per frame of ``points`` [F, n, k], the share of images whose label a 5-nearest-neighbour
    vote of the others gives (5-fold cross-validated, ``vae.latent.knn_accuracy``): how far apart
    the labels are, in the latent space itself (k = d) or on a map (k = 2). Chance is about one
    over the number of labels (0.1 on MNIST)."""
    return np.array([knn_accuracy(frame, labels) for frame in np.asarray(points, dtype=np.float32)])


# ---------------------------------------------------------------- export


def gif_frames(film: Film, layout: np.ndarray, progress=None) -> list:
    """One PIL image per frame: the map coloured by label (``label_colours`` of as many labels as
    the film's highest, which films every label of the test set) beside the 16 prior samples, in
    colour for a colour model, titled by epoch and active units."""
    from PIL import Image, ImageDraw

    side, pad, title_h = 320, 16, 28
    lo = np.percentile(layout.reshape(-1, 2), 0.5, axis=0)
    hi = np.percentile(layout.reshape(-1, 2), 99.5, axis=0)
    span = np.maximum(hi - lo, 1e-6)
    colours = [tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in label_colours(int(film.labels.max()) + 1)]
    images = []
    for i in range(film.frames):
        canvas = Image.new("RGB", (2 * side + 3 * pad, side + title_h + pad), "white")
        draw = ImageDraw.Draw(canvas)
        draw.text((pad, 8), f"epoch {epoch_label(film.epochs[i])} · {film.active_units[i]} of "
                            f"{film.latent_dim} dimensions active", fill="black")
        xy = (np.clip((layout[i] - lo) / span, 0, 1) * (side - 8) + 4)
        for (x, y), label in zip(xy, film.labels):
            px, py = pad + x, title_h + side - y
            draw.ellipse((px - 2.5, py - 2.5, px + 2.5, py + 2.5), fill=colours[int(label)])
        draw.rectangle((pad, title_h, pad + side, title_h + side), outline=(200, 200, 200))
        grid = make_grid(film.prior_samples[i], ncol=4, pad=2)
        samples = Image.fromarray(grid).resize((side, side), Image.Resampling.NEAREST).convert("RGB")
        canvas.paste(samples, (2 * pad + side, title_h))
        images.append(canvas)
        if progress is not None:
            progress(i + 1, film.frames)
    return images


def gif_bytes(film: Film, layout: np.ndarray | None = None, progress=None, frame_ms: int = 150) -> bytes:
    """The film as an animated GIF (map, by default PCA's, and prior samples), one GIF frame per
    film frame; the last frame is held for a second before it loops."""
    import io

    images = gif_frames(film, film_layout(film) if layout is None else layout, progress)
    durations = [frame_ms] * (len(images) - 1) + [1000]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return buffer.getvalue()


def save_gif(film: Film, path: str | Path, layout: np.ndarray | None = None, progress=None) -> Path:
    """``gif_bytes`` written to ``path`` atomically."""
    data = gif_bytes(film, layout, progress)
    return write_atomically(path, lambda f: f.write(data))


# ---------------------------------------------------------------- command line


def describe(film: Film, layout: np.ndarray | None = None) -> str:
    """One line per frame: its epoch, active units, total KL and, for a film of more than one label,
    how often an image's nearest neighbours share its label in the latent space (and on
    ``layout``'s map, if given)."""
    labelled = len(np.unique(film.labels)) > 1
    in_latent = neighbour_agreement(film.means, film.labels) if labelled else None
    on_map = neighbour_agreement(layout, film.labels) if labelled and layout is not None else None
    header = f"{'epoch':>8}  active  KL (nats)"
    header += f"  5-NN in {film.latent_dim}-D" if in_latent is not None else ""
    rows = [header + ("  5-NN on the map" if on_map is not None else "")]
    for i, (epoch, active, kl) in enumerate(zip(film.epochs, film.active_units, film.kl_per_dim.sum(axis=1))):
        row = f"{epoch_label(epoch):>8}  {active:3d}/{film.latent_dim:<3d} {kl:8.2f}"
        row += f"  {in_latent[i]:9.0%}" if in_latent is not None else ""
        rows.append(row + (f"  {on_map[i]:15.0%}" if on_map is not None else ""))
    return "\n".join(rows)


def main(argv=None) -> int:
    from tqdm import tqdm

    p = argparse.ArgumentParser(prog="python -m vae.film",
                                description="Show a checkpoint's training film, or export it as a GIF.")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--layout", choices=LAYOUTS, default="pca",
                   help="the map of a latent of more than 2 dimensions: PCA's two linear directions, or the "
                        "aligned t-SNE map in which the clusters show (tens of seconds, then kept on disk)")
    p.add_argument("--gif", type=Path, help="write the film as an animated GIF here")
    p.add_argument("--store", action="store_true",
                   help="with --layout tsne: store the t-SNE map in the checkpoint, so the app opens it at once")
    args = p.parse_args(argv)
    try:
        ckpt = load_checkpoint(args.checkpoint)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if ckpt.film is None:
        print(f"error: {args.checkpoint.name} has no film{': ' + ckpt.film_error if ckpt.film_error else ''}.",
              file=sys.stderr)
        return 1
    film = ckpt.film
    print(f"{args.checkpoint.name}: {film.frames} frames of {len(film.indices)} test images of "
          f"{ckpt.dataset.name}, latent size {film.latent_dim}")
    layout = None
    if args.layout == "tsne" and film.latent_dim > 2:
        with tqdm(total=film.frames, unit="frame", desc="t-SNE") as bar:
            layout = film_layout(film, "tsne", cache_dir=default_data_dir() / "tsne",
                                 progress=lambda done, total: bar.update(done - bar.n))
        if args.store:
            film.tsne = layout
            update_checkpoint(args.checkpoint, film=film.to_state())
            print(f"stored the t-SNE map in {args.checkpoint}")
    if args.gif is None:
        print(describe(film, layout))
        return 0
    with tqdm(total=film.frames, unit="frame", desc="GIF") as bar:
        save_gif(film, args.gif, layout, progress=lambda done, total: bar.update(done - bar.n))
    print(f"saved {args.gif}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
