"""The training film: what a real run records, how it is stored and laid out, and its export."""

from __future__ import annotations

import io
import math
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from harness import BUNDLED_DIR
from vae import latent
from vae.checkpoint import FORMAT, VERSION, load_checkpoint, read_checkpoint
from vae.config import TrainConfig
from vae.data import Dataset, DatasetInfo
from vae.events import StepEvent
from vae.film import (
    ACTIVE_VARIANCE,
    FILM_IMAGES,
    MAX_BYTES,
    QUALITATIVE,
    Film,
    FilmRecorder,
    describe,
    film_digits,
    film_layout,
    gif_bytes,
    label_colours,
    main,
    neighbour_agreement,
    procrustes_align,
)
from vae.film_state import FilmError
from vae.model import ConvVAE, VAEConfig
from vae.train import train

QUICK = dict(epochs=2, train_size=4000, val_size=500, seed=0)  # 16 steps an epoch
QUICK_EPOCHS = [0, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2]
BUNDLED = ("default.pt", "latent2d.pt")


@pytest.fixture(scope="module")
def short_run(mnist, tmp_path_factory):
    path = tmp_path_factory.mktemp("film") / "run.pt"
    result = train(TrainConfig(**QUICK), path, data=mnist)
    assert result.status == "finished"
    return path


def film_of(path) -> Film:
    ckpt = load_checkpoint(path)
    assert ckpt.film is not None, ckpt.film_error
    return ckpt.film


def test_a_run_films_before_training_inside_epoch_one_and_after_every_epoch(short_run, mnist):
    film = film_of(short_run)
    assert film.epochs.tolist() == QUICK_EPOCHS
    n, d = FILM_IMAGES, VAEConfig.latent_dim
    assert film.means.shape == (len(QUICK_EPOCHS), n, d) and film.means.dtype == np.float16
    assert film.logvars is None and film.manifold is None  # those are for 2-D latents
    assert film.prior_samples.shape == (len(QUICK_EPOCHS), 16, 28, 28)
    assert film.prior_samples.min() >= 0 and film.prior_samples.max() <= 1
    assert np.array_equal(film.labels, mnist.test_labels.numpy()[film.indices])
    assert np.array_equal(np.bincount(film.labels), [FILM_IMAGES // 10] * 10)
    assert np.array_equal(film.indices, film_digits(mnist.test_labels))  # the same digits for every model
    # The samples sharpen: the untrained decoder's are near-uniform grey, the trained one's are not.
    assert film.prior_samples[-1].std() > 2 * film.prior_samples[0].std()


def test_the_kept_epochs_frame_is_the_saved_models_own_encoding(short_run, mnist):
    ckpt = load_checkpoint(short_run)
    film = ckpt.film
    frame = film.frame_at(ckpt.metrics.epoch)
    assert film.epochs[frame] == ckpt.metrics.epoch
    mu, logvar = latent.encode(ckpt.model, mnist.test_images[film.indices])
    np.testing.assert_allclose(film.means[frame].astype(np.float32), mu, rtol=2e-3, atol=2e-3)  # float16
    # The KL per dimension is >= 0 and sums to the digits' mean KL; the active units are counted
    # by the variance of the means, and lie in [0, d].
    kl = 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar)
    assert (film.kl_per_dim >= 0).all()
    assert film.kl_per_dim[frame].sum() == pytest.approx(kl.sum(axis=1).mean(), rel=1e-4)
    assert film.active_units[frame] == int((mu.var(axis=0) > ACTIVE_VARIANCE).sum())
    assert ((film.active_units >= 0) & (film.active_units <= ckpt.config.latent_dim)).all()
    assert film.active_units[0] < film.active_units[-1]  # the untrained encoder's means barely vary


def test_recording_leaves_the_training_unchanged_and_can_be_turned_off(short_run, mnist, tmp_path):
    path = tmp_path / "nofilm.pt"
    train(TrainConfig(**QUICK), path, data=mnist, film=False)
    plain = load_checkpoint(path)
    assert plain.film is None and plain.film_error is None and "film" not in read_checkpoint(path)
    filmed = load_checkpoint(short_run)
    for name, tensor in plain.model.state_dict().items():
        assert torch.equal(tensor, filmed.model.state_dict()[name]), name


def test_a_resumed_run_continues_its_film(mnist, tmp_path):
    path = tmp_path / "resumed.pt"
    train(TrainConfig(**{**QUICK, "epochs": 1}), path, data=mnist)
    first = film_of(path)
    assert first.epochs.tolist() == QUICK_EPOCHS[:-1]
    assert "film" in torch.load(path.with_suffix(".resume"), weights_only=True)["train_state"]
    train(TrainConfig(**QUICK), path, data=mnist, resume=True)
    resumed = load_checkpoint(path)
    assert resumed.film.epochs.tolist() == QUICK_EPOCHS
    np.testing.assert_array_equal(resumed.film.means[:-1], first.means)  # the frames before the resume, kept
    mu, _ = latent.encode(resumed.model, mnist.test_images[resumed.film.indices])
    np.testing.assert_allclose(resumed.film.means[-1].astype(np.float32), mu, rtol=2e-3, atol=2e-3)


def test_a_stopped_run_keeps_the_frames_recorded_so_far(mnist, tmp_path):
    stop = threading.Event()

    def stop_in_epoch_two(event):
        if isinstance(event, StepEvent) and event.epoch == 2:
            stop.set()

    path = tmp_path / "stopped.pt"
    result = train(TrainConfig(**{**QUICK, "epochs": 3}), path, data=mnist, stop=stop, callback=stop_in_epoch_two)
    assert result.status == "stopped"
    assert film_of(path).epochs.tolist() == QUICK_EPOCHS[:-1]


def test_a_damaged_or_foreign_film_still_loads_its_model(short_run, tmp_path):
    payload = read_checkpoint(short_run)
    broken = dict(payload["film"], means=payload["film"]["means"][:, :10])
    foreign = {name: t[..., :5] if name in ("means", "kl_per_dim") else t for name, t in payload["film"].items()}
    for name, film, reason in [("broken.pt", broken, "damaged"), ("foreign.pt", foreign, "5 latent dimensions"),
                               ("junk.pt", {"means": "not an array"}, "not a set of arrays")]:
        path = tmp_path / name
        torch.save({**payload, "format": FORMAT, "version": VERSION, "film": film}, path)
        ckpt = load_checkpoint(path)
        assert ckpt.film is None and reason in ckpt.film_error
        assert ckpt.metrics.to_dict() == payload["metrics"]  # the model itself is fine


def test_long_runs_are_thinned_under_the_size_bound_keeping_epoch_one_and_the_kept_epoch():
    model = ConvVAE(VAEConfig())
    images = torch.zeros(10_000, 28, 28, dtype=torch.uint8)
    labels = torch.arange(10_000) % 10
    recorder = FilmRecorder(images, labels, model.latent_dim, torch.device("cpu"))
    for epoch in [0, 1 / 16, 1 / 8, 1 / 4, 1 / 2] + list(range(1, 151)):
        recorder.record(model, epoch)
        recorder.thin(keep_epoch=7)
    film = recorder.film()
    stored = sum(t.numel() * t.element_size() for t in film.to_state().values())
    assert stored <= MAX_BYTES
    assert film.frames < 100
    assert film.epochs[:6].tolist() == [0, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1]
    assert 7 in film.epochs and film.epochs[-1] == 150


def test_procrustes_aligns_a_rotated_reflected_scaled_copy_back():
    points = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32) * [3, 1]
    angle = math.radians(37)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = (points @ rotation @ np.diag([1, -1])) * 2.5 + [4, -7]
    np.testing.assert_allclose(procrustes_align(moved, points), points, atol=1e-4)


def test_the_pca_layout_does_not_flip_between_frames(short_run):
    film = film_of(short_run)
    flipped = Film(**{**film.__dict__, "means": np.concatenate([film.means[-1:], -film.means[-1:]])[:, :, ::-1],
                      "epochs": np.array([1.0, 2.0]), "kl_per_dim": film.kl_per_dim[:2],
                      "active_units": film.active_units[:2], "prior_samples": film.prior_samples[:2]})
    layout = film_layout(flipped)
    assert layout.shape == (2, len(film.indices), 2)
    np.testing.assert_allclose(layout[1], layout[0], atol=1e-2)  # a mirrored, permuted latent looks the same


def test_a_growing_film_lays_out_only_its_new_frames(short_run):
    """The live view extends the layout it has; that must give the layout of the whole film."""
    film = film_of(short_run)
    first = Film(**{**film.__dict__, "means": film.means[:3], "epochs": film.epochs[:3],
                    "kl_per_dim": film.kl_per_dim[:3], "active_units": film.active_units[:3],
                    "prior_samples": film.prior_samples[:3]})
    whole = film_layout(film)
    np.testing.assert_array_equal(film_layout(film, known=film_layout(first)), whole)
    np.testing.assert_array_equal(film_layout(first), whole[:3])  # adding frames never moves earlier ones


def test_every_bundled_model_carries_a_film_under_the_size_bound(mnist):
    for name in BUNDLED:
        ckpt = load_checkpoint(BUNDLED_DIR / name)
        assert ckpt.film is not None, f"{name}: {ckpt.film_error}"
        assert sum(t.numel() * t.element_size() for t in ckpt.film.to_state().values()) <= MAX_BYTES
        frame = ckpt.film.frame_at(ckpt.metrics.epoch)
        assert ckpt.film.epochs[frame] == ckpt.metrics.epoch
        if ckpt.config.latent_dim == 2:
            assert ckpt.film.manifold.shape[1:] == (12 * 28, 12 * 28)
            assert ckpt.film.logvars.shape == ckpt.film.means.shape


def test_the_command_line_exports_an_animated_gif_with_one_frame_per_film_frame(short_run, tmp_path, capsys):
    out = tmp_path / "film.gif"
    assert main([str(short_run), "--gif", str(out)]) == 0
    with Image.open(out) as gif:
        assert gif.is_animated and gif.n_frames == len(QUICK_EPOCHS)
    assert main([str(short_run)]) == 0
    printed = capsys.readouterr().out
    assert "1/16" in printed and "active" in printed


def test_the_command_line_says_when_there_is_no_film(mnist, tmp_path, capsys):
    path = tmp_path / "plain.pt"
    train(TrainConfig(**{**QUICK, "epochs": 1}), path, data=mnist, film=False)
    assert main([str(path), "--gif", str(tmp_path / "x.gif")]) == 1
    assert "has no film" in capsys.readouterr().err


def test_an_autoencoders_frames_have_its_codes_and_no_kl(mnist):
    torch.manual_seed(0)
    autoencoder = ConvVAE(VAEConfig(latent_dim=2, channels=4, hidden=16, variational=False))
    recorder = FilmRecorder(mnist.test_images, mnist.test_labels, 2, torch.device("cpu"))
    recorder.record(autoencoder, 0.0)
    film = Film.from_state(recorder.film().to_state(), 2)
    assert film.logvars is None and film.kl_per_dim.tolist() == [[0.0, 0.0]]
    codes, _ = latent.encode(autoencoder, mnist.test_images[film.indices])
    np.testing.assert_allclose(film.means[0], codes, atol=2e-3)  # stored as float16
    assert film.active_units[0] == int((codes.var(axis=0) > ACTIVE_VARIANCE).sum())
    assert film.manifold.shape == (1, 12 * 28, 12 * 28)  # a 2-D code still decodes a grid


# ---------------------------------------------------------------- the aligned t-SNE map


def frames_of(film: Film, frames) -> Film:
    """``film`` cut to the frames ``frames`` (a slice), without its stored t-SNE map."""
    return Film(**{**film.__dict__, **{name: getattr(film, name)[frames] for name in
                                       ("epochs", "means", "kl_per_dim", "active_units", "prior_samples")},
                   "tsne": None})


def test_each_t_sne_frame_starts_from_the_one_before_so_digits_move_less_than_in_fresh_maps():
    film = frames_of(load_checkpoint(BUNDLED_DIR / "default.pt").film, slice(-3, None))
    aligned = film_layout(film, "tsne")
    assert aligned.shape == (3, len(film.indices), 2) and np.isfinite(aligned).all()
    fresh = np.stack([latent.tsne(frame.astype(np.float32), seed=i) for i, frame in enumerate(film.means)])

    def moved(layout):  # mean move of a digit between consecutive frames, in units of the map's spread
        spread = np.sqrt(((layout - layout.mean(axis=1, keepdims=True)) ** 2).sum(-1).mean())
        return np.sqrt(((layout[1:] - layout[:-1]) ** 2).sum(-1)).mean() / spread

    # Even with each fresh map turned onto the previous one, its digits jump much further.
    turned = np.stack([fresh[0]] + [procrustes_align(fresh[i], fresh[i - 1]) for i in (1, 2)])
    assert moved(aligned) < 0.5 * moved(turned)


def test_the_t_sne_map_is_kept_on_disk_and_a_foreign_file_is_refused(tmp_path, monkeypatch):
    import vae.film

    whole = load_checkpoint(BUNDLED_DIR / "default.pt").film
    film, other = frames_of(whole, slice(-2, None)), frames_of(whole, slice(-4, -2))
    made = film_layout(film, "tsne", cache_dir=tmp_path)
    (kept,) = tmp_path.glob("film-tsne-*.npz")
    monkeypatch.setattr(vae.film, "aligned_tsne", lambda *a, **k: pytest.fail("made again, not read from disk"))
    np.testing.assert_array_equal(film_layout(film, "tsne", cache_dir=tmp_path), made)
    assert vae.film.stored_tsne_layout(other, tmp_path) is None  # another film's frames: not on disk

    # Another film's map under this film's name is refused, and so is a damaged file.
    monkeypatch.undo()
    other_map = film_layout(other, "tsne", cache_dir=tmp_path)
    (other_file,) = set(tmp_path.glob("film-tsne-*.npz")) - {kept}
    other_file.replace(kept)
    assert vae.film.stored_tsne_layout(film, tmp_path) is None
    kept.write_bytes(b"not a map")
    assert vae.film.stored_tsne_layout(film, tmp_path) is None
    assert other_map.shape == made.shape


def test_a_stored_t_sne_map_round_trips_and_a_damaged_one_is_refused():
    film = load_checkpoint(BUNDLED_DIR / "default.pt").film
    assert film.tsne is not None, "the bundled default opens its film with t-SNE at once"
    state = film.to_state()
    np.testing.assert_array_equal(Film.from_state(state, film.latent_dim).tsne, film.tsne)
    np.testing.assert_array_equal(film_layout(film, "tsne"), film.tsne)
    with pytest.raises(FilmError, match="tsne"):
        Film.from_state({**state, "tsne": state["tsne"][:-1]}, film.latent_dim)


def test_the_bundled_defaults_t_sne_film_shows_clusters_that_pca_cannot():
    """The measure of issue 31's table: at the last frame, a 5-NN vote on the t-SNE map finds most
    digits' labels, far more than on the PCA map of the same frame."""
    film = load_checkpoint(BUNDLED_DIR / "default.pt").film
    last = slice(-1, None)
    on_tsne = neighbour_agreement(film.tsne[last], film.labels)[0]
    on_pca = neighbour_agreement(film_layout(film, "pca")[last], film.labels)[0]
    in_latent = neighbour_agreement(film.means[last], film.labels)[0]
    assert on_tsne >= 0.75 and on_pca < 0.5 < in_latent


def test_a_2d_film_keeps_its_raw_coordinates_in_every_layout():
    film = load_checkpoint(BUNDLED_DIR / "latent2d.pt").film
    for method in ("pca", "tsne"):
        np.testing.assert_array_equal(film_layout(film, method), film.means.astype(np.float32))


# ---------------------------------------------------------------- any dataset


def colour_dataset(per_label=(40, 25, 12), test_share: float = 0.5) -> Dataset:
    """A tiny hand-made colour dataset of three named labels, each a colour with noise, [N, 3, 32, 32]."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(len(per_label)), per_label)
    base = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200]])[labels]
    images = np.clip(base[:, :, None, None] + rng.integers(-40, 40, (len(labels), 3, 32, 32)), 0, 255).astype(np.uint8)
    test = np.arange(len(labels)) % int(1 / test_share) == 0
    info = DatasetInfo(key="colours-0123", name="Colours", sha256="0" * 64, channels=3, size=32,
                       label_names=("cat", "dog", "owl"), train_count=int((~test).sum()), test_count=int(test.sum()),
                       background="black")
    as_tensor = torch.from_numpy
    return Dataset(info, as_tensor(images[~test]), as_tensor(labels[~test]), as_tensor(images[test]),
                   as_tensor(labels[test]))


def test_the_films_sample_is_balanced_for_any_labels_and_an_unlabelled_set():
    mnist_like = np.random.default_rng(1).integers(0, 10, 10_000)
    old = np.random.default_rng(0)  # the sample every MNIST film has had: 50 of each digit, in digit order
    expected = np.sort(np.concatenate([old.choice(np.flatnonzero(mnist_like == d), 50, replace=False)
                                       for d in range(10)]))
    np.testing.assert_array_equal(film_digits(mnist_like), expected)

    three = np.repeat([0, 1, 2], [400, 30, 300])  # 166 of each where there are, all 30 of the rare one
    picked = film_digits(three)
    assert np.bincount(three[picked]).tolist() == [166, 30, 166] and np.all(np.diff(picked) > 0)
    np.testing.assert_array_equal(film_digits(three), picked)  # seeded: the same for every model
    assert len(film_digits(np.zeros(2000, dtype=np.int64))) == FILM_IMAGES  # unlabelled: one label
    assert len(film_digits(np.zeros(120, dtype=np.int64))) == 120  # or all of a small test set
    assert len(film_digits(np.arange(1000))) == 1000  # more labels than images to film: one of each


def test_label_colours_are_distinct_for_any_number_of_labels():
    assert label_colours(10) == QUALITATIVE
    assert label_colours(3) == QUALITATIVE[:3]
    for n in (1, 11, 40):
        colours = label_colours(n)
        assert len(colours) == len(set(colours)) == n
        assert all(len(c) == 7 and c[0] == "#" and int(c[1:], 16) >= 0 for c in colours)


def test_a_colour_models_film_records_round_trips_and_exports():
    data = colour_dataset()
    torch.manual_seed(0)
    model = ConvVAE(VAEConfig(image_channels=3, image_size=32, latent_dim=4, channels=4, hidden=16, encoder_hidden=16))
    recorder = FilmRecorder(data.test_images, data.test_labels, 4, torch.device("cpu"))
    for epoch in (0.0, 1 / 16, 1.0):
        recorder.record(model, epoch)
    film = Film.from_state(recorder.film().to_state(), 4)
    np.testing.assert_array_equal(film.indices, np.arange(len(data.test_labels)))  # every one of these few
    np.testing.assert_array_equal(film.labels, data.test_labels.numpy()[film.indices])
    assert film.prior_samples.shape == (3, 16, 3, 32, 32) and film.manifold is None
    np.testing.assert_allclose(film.prior_samples, recorder.film().prior_samples, atol=0.5 / 255 + 1e-6)
    with Image.open(io.BytesIO(gif_bytes(film))) as gif:
        assert gif.n_frames == 3
        frame = np.asarray(gif.convert("RGB"))
    assert (np.ptp(frame.reshape(-1, 3), axis=0) > 0).all()
    assert "5-NN" in describe(film)  # three labels: how well they are kept apart

    unlabelled = FilmRecorder(data.test_images, torch.zeros_like(data.test_labels), 4, torch.device("cpu"))
    unlabelled.record(model, 0.0)
    assert "5-NN" not in describe(unlabelled.film())  # one label has nothing to keep apart


def test_a_colour_2d_films_manifold_is_a_colour_picture():
    data = colour_dataset()
    model = ConvVAE(VAEConfig(image_channels=3, image_size=32, latent_dim=2, channels=2, hidden=8, encoder_hidden=8))
    recorder = FilmRecorder(data.test_images, data.test_labels, 2, torch.device("cpu"))
    recorder.record(model, 0.0)
    film = Film.from_state(recorder.film().to_state(), 2)
    assert film.manifold.shape == (1, 12 * 32, 12 * 32, 3) and film.logvars.shape == film.means.shape


def test_a_film_of_any_test_set_is_accepted_and_damage_is_refused_in_words(short_run):
    state = load_checkpoint(short_run).film.to_state()  # an MNIST film: [F, 16, 28, 28] samples
    big = {**state, "indices": state["indices"] + 50_000, "labels": state["labels"] + 30}  # a larger set's
    assert Film.from_state(big).labels.min() == 30
    for damage, words in [({"labels": state["labels"] - 1}, "whole numbers from 0"),
                          ({"indices": state["indices"].double()}, "whole numbers from 0"),
                          ({"prior_samples": state["prior_samples"][:, :, :20]}, "square grayscale or colour"),
                          ({"prior_samples": state["prior_samples"][:, :, None].expand(-1, -1, 2, -1, -1)},
                           "square grayscale or colour")]:
        with pytest.raises(FilmError, match=words):
            Film.from_state({**state, **damage})
