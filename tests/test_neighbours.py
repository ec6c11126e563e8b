"""The k-NN vote among the training digits' means, and the disk cache of those means."""

import numpy as np

from vae import latent
from vae.neighbours import VOTERS, cached_means


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
