"""The k-NN vote among the training images' means (MNIST's digits, or any labelled set's), and the disk
cache of those means."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vae import latent
from vae.model import ConvVAE, VAEConfig
from vae.neighbours import VOTERS, DigitVote, cached_means


def test_test_digits_are_recognised_as_their_own_label(model, mnist, vote):
    mu, _ = latent.encode(model, mnist.test_images)
    digits, shares = vote.recognise(mu)
    assert np.mean(digits == mnist.test_labels.numpy()) >= 0.95
    assert shares.min() >= 1 / VOTERS and shares.max() == 1.0


def test_a_verdict_names_the_digit_or_says_it_is_unsure(model, mnist, vote):
    mu, _ = latent.encode(model, mnist.test_images[:200])
    verdicts = [vote.vote(m) for m in mu]
    sure = [v for v in verdicts if v.digit is not None]
    assert len(sure) >= 180
    v = sure[0]
    assert v.sentence() == f"Looks like a {v.digit}: {v.votes[v.digit]} of {VOTERS} nearest training digits"
    assert len(v.neighbours) == VOTERS and np.all(np.diff(v.distances) >= 0)
    # A latent between a 1 and a 0 splits the vote, and one far outside every cluster is "far".
    labels = mnist.test_labels.numpy()[:200]
    ones, zeros = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    far = vote.vote(mu[ones[0]] * 0 + 50.0)
    assert far.far and far.digit is None and far.sentence().startswith("Unsure: unlike every training digit")
    split = [vote.vote(z) for z in latent.interpolate(mu[ones[0]], mu[zeros[0]], 201)]
    assert any(v.digit is None and v.sentence().startswith("Unsure: ") and " or " in v.sentence() for v in split)


def test_the_cache_round_trips_and_refuses_a_foreign_or_damaged_file(ckpt, model, mnist, tmp_path):
    images = mnist.train_images[:3000]
    first = cached_means(ckpt, images, tmp_path)
    [path] = tmp_path.glob("means-*.npz")
    np.testing.assert_array_equal(cached_means(ckpt, images, tmp_path), first)
    np.testing.assert_allclose(first, latent.encode(model, images)[0], atol=1e-5)
    # A file under the right name that another model wrote (its key inside differs) is rebuilt.
    np.savez(path, key=np.array("another-model"), mu=np.zeros_like(first))
    np.testing.assert_array_equal(cached_means(ckpt, images, tmp_path), first)
    path.write_bytes(b"not an npz")
    np.testing.assert_array_equal(cached_means(ckpt, images, tmp_path), first)
    # Other images are another key, so another file.
    cached_means(ckpt, mnist.train_images[:1000], tmp_path)
    assert len(list(tmp_path.glob("means-*.npz"))) == 2


# ---------------------------------------------------------------- any labelled dataset


def three_clusters(n: int = 60, d: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Means [3n, d] in three tight clusters (labels 0, 1, 2) along the first axis: 0 at -10, 1 at 0, 2 at 10."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], n)
    means = rng.normal(scale=0.3, size=(3 * n, d)).astype(np.float32)
    means[:, 0] += (labels - 1) * 10.0
    return means, labels


def test_the_vote_names_any_datasets_labels():
    means, labels = three_clusters()
    vote = DigitVote(means, labels, ("cat", "dog", "owl"))
    cat, owl = vote.vote(means[0]), vote.vote(means[-1])
    assert cat.votes.tolist() == [VOTERS, 0, 0] and cat.digit == 0 and cat.name == "cat"
    assert cat.sentence() == f"Looks like a cat: {VOTERS} of {VOTERS} nearest training images"
    assert owl.sentence() == f"Looks like an owl: {VOTERS} of {VOTERS} nearest training images"
    far = vote.vote(means[0] * 0 + 500.0)
    assert far.far and "unlike every training image" in far.sentence() and "owl images" in far.sentence()
    leaders, shares = vote.recognise(means)
    np.testing.assert_array_equal(leaders, labels)
    assert (shares == 1.0).all()


def test_a_split_vote_names_both_labels():
    x = [-0.5, -1.5, -2.5, -3.5, 0.6, 1.6, 2.6, 3.6, *np.arange(20, 24, 0.5)]  # 4 cats, 4 dogs, 8 owls far off
    means = np.stack([x, np.zeros(len(x))], axis=1)
    vote = DigitVote(means, [0] * 4 + [1] * 4 + [2] * 8, ("cat", "dog", "owl"))
    split = vote.vote(np.zeros(2))
    assert not split.far and split.digit is None and split.name is None
    assert split.sentence() == f"Unsure: cat or dog (4 and 4 of {VOTERS} nearest training images)"


def test_unnamed_labels_are_their_own_numbers_and_an_unlabelled_set_has_no_vote():
    means, labels = three_clusters()
    vote = DigitVote(means, labels)  # MNIST's way: the digits name themselves
    assert vote.label_names == ("0", "1", "2")
    assert vote.vote(means[-1]).sentence() == f"Looks like a 2: {VOTERS} of {VOTERS} nearest training digits"
    with pytest.raises(ValueError, match="unlabelled"):
        DigitVote(means, np.zeros(len(means), dtype=np.int64), ())
    with pytest.raises(ValueError, match="indices into the 2 label names"):
        DigitVote(means, labels, ("cat", "dog"))


def test_each_datasets_images_have_their_own_cache_file(tmp_path):
    model = ConvVAE(VAEConfig(image_channels=3, image_size=32, latent_dim=4, channels=2, hidden=8, encoder_hidden=8))
    ckpt = SimpleNamespace(key="a-colour-model", model=model)  # all cached_means reads of a checkpoint
    rng = np.random.default_rng(0)
    first, second = (torch.from_numpy(rng.integers(0, 256, (20, 3, 32, 32), dtype=np.uint8)) for _ in range(2))
    means = cached_means(ckpt, first, tmp_path)
    assert means.shape == (20, 4)
    assert not np.allclose(cached_means(ckpt, second, tmp_path), means)
    assert len(list(tmp_path.glob("means-*.npz"))) == 2
