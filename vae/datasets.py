"""Datasets besides MNIST: scikit-learn's 1,797 digits, which ship inside scikit-learn and so work
offline, and a learner's own folder or .zip of images, converted once into the form a model takes.

A folder or zip follows torchvision's ImageFolder layout: one subfolder per label (images anywhere
beneath it), or images side by side for an unlabelled set. Every image (PNG, JPEG, GIF, WEBP, BMP,
TIFF; any size and mode) becomes grayscale 28×28 (``GRAY``, as MNIST) or RGB 32×32 (``COLOR``, as
CIFAR): resized to fit, keeping its shape, and centred. Not MNIST's crop-and-centre-of-mass: that
recipe is for digits, and an upload may hold faces, letters or leaves.

What is kept: ``<data_dir>/datasets/<name>-<hash>.npz``, compressed, named by a hash of the converted
content, so the same images added twice are kept once and a model's checkpoint can name its data.

Uploads are untrusted. A zip is read in memory, never extracted: every member's name is checked
before anything is read, and its sizes and compression ratios against ``Limits`` (a zip bomb is
refused from its directory, before it is inflated). Pillow opens only the formats above (never,
say, EPS, which would run Ghostscript). A file that is not an image, or is damaged, is skipped and
counted; what is wrong with the whole upload raises ``DatasetError`` with a message for the user.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import os
import re
import stat
import sys
import threading
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, ImageOps

from .data import MAX_IMAGES, Dataset, DatasetInfo, default_data_dir, form_name, load_mnist
from .data import MNIST_INFO as MNIST_INFO  # offered here too, beside the other built-in dataset
from .files import write_atomically


@dataclass(frozen=True)
class ImageForm:
    """What every image of a dataset is converted to: ``channels`` 1 (grayscale) or 3 (RGB), ``size``
    pixels square."""

    channels: int
    size: int


GRAY, COLOR = ImageForm(channels=1, size=28), ImageForm(channels=3, size=32)
BUILT_IN = ("mnist", "digits")
KEPT_FOLDER = "datasets"  # under the data folder
KEY_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")  # what a kept dataset's key can be: no path in it
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "DIB", "TIFF")  # Pillow's plugins we let open a file
EXTENSIONS = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".gif", ".webp", ".bmp", ".dib", ".tif", ".tiff")
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # more than 8 bits a pixel: scaled, not clipped
# A file smaller than this cannot be a bomb, however well it compresses: a plain 64x64 BMP deflates
# 100-fold. So the ratio limit applies to members and zips bigger than this.
RATIO_FLOOR = 2**20
SEED = 0  # of the test split: the same content always gives the same split, hence the same hash
WORKERS = min(4, os.cpu_count() or 1)  # Pillow lets go of the GIL while it decodes and resizes
ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")
MODE_NAMES = {"1": "1-bit", "L": "grey", "LA": "grey + alpha", "P": "palette", "PA": "palette + alpha",
              "RGBA": "RGB + alpha", "I;16": "16-bit grey", "I": "32-bit grey", "F": "float grey"}  # Pillow's modes

Progress = Callable[[int, int], None]


class DatasetError(ValueError):
    """A folder, zip or key that cannot be a dataset; the message says why for the user. ``limit``:
    the ``Limits`` field that was exceeded, or None when no limit was."""

    def __init__(self, message: str, limit: str | None = None):
        super().__init__(message)
        self.limit = limit


@dataclass(frozen=True)
class Limits:
    """What an upload may hold: a teaching server decodes it in memory, on a CPU. Exceeding one
    raises a ``DatasetError`` naming the field (``max_image_pixels``: that image is skipped)."""

    max_images: int = MAX_IMAGES
    max_uncompressed_bytes: int = 500 * 2**20
    max_compression_ratio: float = 100.0  # per zip member and for the whole zip: a zip-bomb guard
    max_image_pixels: int = 50_000_000  # one image's width x height, checked before it is decoded
    test_fraction: float = 0.1  # held out per label, at least one image each

    def __post_init__(self):
        if min(self.max_images, self.max_uncompressed_bytes, self.max_image_pixels) < 1:
            raise ValueError(f"limits must be positive: {self}")
        if self.max_compression_ratio < 1 or not 0 < self.test_fraction < 1:
            raise ValueError(f"max_compression_ratio must be >= 1 and test_fraction in (0, 1): {self}")


@dataclass(frozen=True)
class Skipped:
    """A file left out and why: ``reason`` reads "kind" or "kind: detail" (reports group by kind)."""

    name: str
    reason: str

    @property
    def kind(self) -> str:
        return self.reason.split(": ", 1)[0]


@dataclass(frozen=True)
class Report:
    """What a folder or zip held: images per label ({} when unlabelled), the original sizes ("W×H")
    and Pillow modes seen, most common first, and the files skipped."""

    info: DatasetInfo
    label_counts: dict[str, int]
    images: int
    sizes: dict[str, int]
    modes: dict[str, int]
    skipped: tuple[Skipped, ...]

    def lines(self) -> list[str]:
        """The report for a person, as the command line prints it."""
        info = self.info
        labels = f"{len(info.label_names)} labels" if info.labelled else "unlabelled (no label folders)"
        lines = [f"{info.name}: {self.images:,} images, {labels}, converted to {info.form}"]
        if info.labelled:
            lines.append("  images per label: " + ", ".join(f"{name}: {n:,}" for name, n in self.label_counts.items()))
        held_out = "from each label" if info.labelled else "at random"
        lines.append(f"  split: {info.train_count:,} to train on, {info.test_count:,} to test (held out {held_out})")
        lines.append(f"  sizes: {_most_common(self.sizes)}")
        lines.append(f"  modes: {_most_common({MODE_NAMES.get(m, m): n for m, n in self.modes.items()})}")
        ink = "light" if info.background == "black" else "dark"
        lines.append(f"  background: {info.background} (margins and transparency are {info.background}; "
                     f"the ink is {ink})")
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped):,} files:")
            for kind, names in _by_kind(self.skipped).items():
                more = ", …" if len(names) > 3 else ""
                lines.append(f"    {kind}: {len(names):,} ({', '.join(names[:3])}{more})")
        return lines


def read_images(source: Path, form: ImageForm = GRAY, limits: Limits = Limits(),
                progress: Progress | None = None, name: str | None = None) -> tuple[Dataset, Report]:
    """A folder or .zip of images as a split ``Dataset`` in ``form``, and a ``Report`` of what it held.
    ``progress(done, total)`` is called after each image; ``name``: the dataset's, by default the
    folder's or the zip's (an upload saved under another name passes its own). Writes nothing."""
    source = Path(source)
    with _listing(source) as (entries, skipped):
        placed, misplaced = _layout(entries)
        skipped += misplaced
        _check_limits([entry for entry, _ in placed], limits)
        canvas = _Canvas(len(placed), form)
        outcomes = _convert_all([entry for entry, _ in placed], canvas, limits, progress)
    skipped += [outcome for outcome in outcomes if isinstance(outcome, Skipped)]
    kept = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, _Seen)]
    labelled = any(label is not None for _, label in placed)
    label_of = [placed[i][1] or "" for i in kept]
    name = name or (source.resolve().name if source.is_dir() else source.stem)
    _check_counts(name, label_of if labelled else [""] * len(kept), skipped)

    seen = [outcomes[i] for i in kept]
    background = _background(sum(s.border for s in seen), sum(s.ink for s in seen), sum(s.cover for s in seen))
    label_names = tuple(sorted(set(label_of))) if labelled else ()
    index = {label: i for i, label in enumerate(label_names)}
    labels = np.array([index.get(label, 0) for label in label_of], dtype=np.int64)
    dataset = _dataset(canvas.composite(np.array(kept), background), labels, label_names, form, background,
                       limits.test_fraction, name=name)
    report = Report(info=dataset.info,
                    label_counts=dict(zip(label_names, np.bincount(labels, minlength=len(label_names)).tolist())),
                    images=len(kept),
                    sizes=dict(Counter(s.size for s in seen).most_common()),
                    modes=dict(Counter(s.mode for s in seen).most_common()),
                    skipped=tuple(sorted(skipped, key=lambda s: s.name)))
    return dataset, report


def digits() -> Dataset:
    """scikit-learn's 1,797 8×8 handwritten digits (light ink, 0-16, on black), as 0-255 pixels
    enlarged to grayscale 28×28, with a stratified test split. Grayscale only, as MNIST: a key names
    one dataset in one form, and a colour copy of grey digits would teach nothing more."""
    from sklearn.datasets import load_digits  # here, not at the top: importing scikit-learn takes a second

    bunch = load_digits()
    pixels = np.rint(bunch.images * (255 / 16)).astype(np.uint8)
    canvas = _Canvas(len(pixels), GRAY)
    for i, image in enumerate(pixels):
        canvas.place(i, Image.fromarray(image))
    return _dataset(canvas.composite(np.arange(len(pixels)), "black"), bunch.target.astype(np.int64),
                    tuple("0123456789"), GRAY, "black", Limits().test_fraction,
                    name="scikit-learn digits", key="digits")


def image_in_form(image: Image.Image, info: DatasetInfo) -> np.ndarray:
    """One image made as ``info``'s images were (its mode converted, fitted, centred, composited onto
    the dataset's background), as a model takes it: float32 [size, size] or [3, size, size] in [0, 1]."""
    form = ImageForm(info.channels, info.size)
    canvas = _Canvas(1, form)
    canvas.place(0, _in_form_mode(image, form))
    return canvas.composite(np.array([0]), info.background)[0].astype(np.float32) / 255.0


def add_dataset(source: Path, form: ImageForm = GRAY, data_dir: Path | None = None, limits: Limits = Limits(),
                progress: Progress | None = None, name: str | None = None) -> tuple[Dataset, Report]:
    """``read_images``, then keep the dataset as ``<data_dir>/datasets/<key>.npz``: written once (a
    kept copy that loads intact is reused). One upload is read at a time per data folder: a second,
    meanwhile, is refused at once rather than queued behind a read that may take a minute."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    lock = _reading_lock(data_dir)
    if not lock.acquire(blocking=False):
        raise DatasetError("another dataset is being read; try again when it has finished")
    try:
        dataset, report = read_images(source, form, limits, progress, name)
        path = kept_path(data_dir, dataset.info.key)
        try:
            _read_kept(path, dataset.info.key)
        except DatasetError:  # not kept yet, or a damaged copy: (re)write it
            _write_kept(path, dataset)
    finally:
        lock.release()
    return dataset, report


def added_datasets(data_dir: Path | None = None) -> list[DatasetInfo]:
    """Every kept dataset's info, by name; files that cannot be read are left out."""
    folder = (Path(data_dir) if data_dir is not None else default_data_dir()) / KEPT_FOLDER
    infos = []
    for path in sorted(folder.glob("*.npz")):
        try:
            info = _kept_info(path)
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
            continue
        if info.key == path.stem:
            infos.append(info)
    return sorted(infos, key=lambda info: (info.name.casefold(), info.key))


@functools.lru_cache(maxsize=32)  # a key names one content, so its info never changes
def dataset_info(key: str, data_dir: Path | None = None) -> DatasetInfo:
    """A dataset's info without its images (MNIST's and a kept one's are read, not made)."""
    if key == "mnist":
        return MNIST_INFO
    if key == "digits":
        return digits().info
    path = kept_path(Path(data_dir) if data_dir is not None else default_data_dir(), key)
    if not KEY_PATTERN.fullmatch(key) or not path.is_file():
        return load_dataset(key, data_dir).info  # raises DatasetError, saying what is kept
    return _kept_info(path)


def load_dataset(key: str, data_dir: Path | None = None) -> Dataset:
    """A dataset by key: "mnist", "digits", or one kept by ``add_dataset``."""
    if key == "mnist":
        return load_mnist(data_dir)
    if key == "digits":
        return digits()
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    path = kept_path(data_dir, key) if KEY_PATTERN.fullmatch(key) else None
    if path is None or not path.is_file():
        kept = [info.key for info in added_datasets(data_dir)]
        raise DatasetError(f"no dataset {key!r}: built in are {', '.join(BUILT_IN)}; kept in "
                           f"{data_dir / KEPT_FOLDER}: {', '.join(kept) if kept else 'none yet'}")
    return _read_kept(path, key)


def resolve(spec: str, form: ImageForm = GRAY, data_dir: Path | None = None,
            progress: Progress | None = None) -> Dataset:
    """The dataset a command line's ``--data`` names: "mnist" or "digits" (built-in names win: give a
    folder called mnist as ./mnist), a kept key, or a folder or zip, added first in ``form``. Raises
    DatasetError when the dataset is in another form (the built-in ones are grayscale 28×28)."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if spec in BUILT_IN:
        _check_form(spec, GRAY, form)  # before loading 70,000 images to refuse them
        return load_dataset(spec, data_dir)
    if KEY_PATTERN.fullmatch(spec) and kept_path(data_dir, spec).is_file():
        dataset = load_dataset(spec, data_dir)
        _check_form(spec, ImageForm(dataset.info.channels, dataset.info.size), form)
        return dataset
    if Path(spec).exists():
        return add_dataset(Path(spec), form, data_dir, progress=progress)[0]
    kept = [info.key for info in added_datasets(data_dir)]
    raise DatasetError(f"no dataset {spec!r}: not {' or '.join(BUILT_IN)}, not a kept dataset "
                       f"({', '.join(kept) if kept else 'none are kept'}), and no folder or zip by that name")


def kept_path(data_dir: Path, key: str) -> Path:
    """Where ``add_dataset`` keeps the dataset of ``key`` in ``data_dir``."""
    return Path(data_dir) / KEPT_FOLDER / f"{key}.npz"


def _check_form(spec: str, actual: ImageForm, form: ImageForm) -> None:
    if actual != form:
        hint = "drop --color" if actual.channels == 1 else "add --color"
        raise DatasetError(f"{spec} is {_describe(actual)}, not {_describe(form)}: {hint}")


def _describe(form: ImageForm) -> str:
    return form_name(form.channels, form.size)


# ---------------------------------------------------------------- listing a folder or zip


@dataclass(frozen=True)
class _Entry:
    """A file to read: its path in the folder or zip ("/"-separated), its size, and how to read it."""

    name: str
    size: int
    packed: int  # its size in the zip (its size, in a folder)
    read: Callable[[], bytes]


@contextmanager
def _listing(source: Path) -> Iterator[tuple[list[_Entry], list[Skipped]]]:
    """The files of a folder or zip that may be images, and the ones left out; a zip stays open
    until the block ends."""
    if source.is_dir():
        yield _list_folder(source)
    elif source.is_file():
        with _open_zip(source) as zf:
            yield _list_zip(zf, source.name)
    else:
        raise DatasetError(f"{source} does not exist: give a folder of images or a .zip of one")


def _list_folder(root: Path) -> tuple[list[_Entry], list[Skipped]]:
    """Walk ``root`` without following links (a link may lead anywhere on the server)."""
    entries, skipped = [], []
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        relative = "" if here == root else here.relative_to(root).as_posix()
        for sub in sorted(subfolders):
            name = f"{relative}/{sub}/".lstrip("/")
            reason = "a symbolic link (not followed)" if (here / sub).is_symlink() else _left_out(name)
            if reason:
                skipped.append(Skipped(name, reason))
                subfolders.remove(sub)
        for file in sorted(files):
            path, name = here / file, f"{relative}/{file}".lstrip("/")
            try:
                info = path.lstat()
            except OSError as e:
                skipped.append(Skipped(name, f"could not be read: {e.strerror}"))
                continue
            reason = ("a symbolic link (not followed)" if stat.S_ISLNK(info.st_mode)
                      else "not a regular file" if not stat.S_ISREG(info.st_mode) else _left_out(name))
            if reason:
                skipped.append(Skipped(name, reason))
            else:
                entries.append(_Entry(name, info.st_size, info.st_size, path.read_bytes))
    return entries, skipped


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        with open(path, "rb") as f:
            damaged = f.read(2) == b"PK"  # a zip's first bytes, its directory lost: cut short in transfer
        if damaged:
            raise DatasetError(f"{path.name}: the zip is damaged ({e})") from None
        raise DatasetError(f"{path.name} is not a zip file: give a folder of images or a .zip of one") from None
    except (EOFError, ValueError, NotImplementedError) as e:
        raise DatasetError(f"{path.name}: the zip is damaged ({e})") from None
    except OSError as e:
        raise DatasetError(f"could not read {path}: {e.strerror or e}") from None


def _list_zip(zf: zipfile.ZipFile, zip_name: str) -> tuple[list[_Entry], list[Skipped]]:
    """The members to read. Every name is checked before any member is: we never extract, but a
    zip naming ../ or a link is not what a learner makes, so it is refused, not half-read."""
    members = zf.infolist()
    for info in members:
        problem = _unsafe(info)
        if problem:
            raise DatasetError(f"{zip_name} holds an unsafe name, {info.filename!r} ({problem}); nothing was read")
    entries, skipped = [], []
    for info in members:
        name = info.filename.replace("\\", "/")
        if name.endswith("/"):
            continue
        reason = _left_out(name)
        if reason:
            skipped.append(Skipped(name, reason))
        elif info.flag_bits & 0x1:
            raise DatasetError(f"{zip_name} is encrypted ({name}): give one without a password")
        else:
            entries.append(_Entry(name, info.file_size, info.compress_size, partial(_read_member, zf, info)))
    return entries, skipped


def _unsafe(info: zipfile.ZipInfo) -> str | None:
    """Why a member's name is unsafe to honour, or None."""
    name = info.filename.replace("\\", "/")
    if stat.S_ISLNK(info.external_attr >> 16):  # Unix zips keep the file's mode in the high 16 bits
        return "a symbolic link"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "an absolute path"
    if ".." in name.split("/"):
        return "a path out of its folder, through '..'"
    return None


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes; zipfile stops at the size its directory declares, so the limits hold."""
    try:
        with zf.open(info) as member:
            return member.read()
    except Exception as e:  # the decompressors (zlib, bz2, lzma) each raise their own kind for bad data
        raise DatasetError(f"the zip is damaged: {info.filename} cannot be read ({e})") from None


def _left_out(name: str) -> str | None:
    """Why a file or folder ("/" at its end) is not read as an image, or None."""
    parts = name.rstrip("/").split("/")
    if "__MACOSX" in parts:
        return "macOS metadata (__MACOSX)"
    if any(part.startswith(".") for part in parts):
        return "hidden"
    suffix = PurePosixPath(name).suffix.lower()
    if not name.endswith("/") and suffix not in EXTENSIONS:
        return f"not an image: {suffix or 'no extension'}"
    return None


def _layout(entries: list[_Entry]) -> tuple[list[tuple[_Entry, str | None]], list[Skipped]]:
    """Each image with its label (its first-level folder; None for a flat folder), in the order of
    label then path. One folder holding everything, as zipping a folder gives, is looked inside."""
    paths = [unicodedata.normalize("NFC", entry.name).split("/") for entry in entries]
    if paths and all(len(p) > 1 for p in paths) and len({p[0] for p in paths}) == 1:
        paths = [p[1:] for p in paths]
    labelled = any(len(p) > 1 for p in paths)
    placed, skipped = [], []
    for entry, path in sorted(zip(entries, paths), key=lambda pair: pair[1]):
        if not labelled:
            placed.append((entry, None))
        elif len(path) == 1:
            skipped.append(Skipped(entry.name, "outside the label folders: it has no label"))
        else:
            placed.append((entry, path[0]))
    return placed, skipped


def _check_limits(entries: list[_Entry], limits: Limits) -> None:
    """Refuse, before reading anything, what is too much to read."""
    if len(entries) > limits.max_images:
        raise DatasetError(f"{len(entries):,} images is more than the limit of {limits.max_images:,} (max_images)",
                           "max_images")
    ratio = limits.max_compression_ratio
    for entry in entries:
        if entry.size > RATIO_FLOOR and entry.size > ratio * entry.packed:
            raise DatasetError(f"{entry.name} would expand from {_mb(entry.packed)} to {_mb(entry.size)}, more "
                               f"than {ratio:g} times (max_compression_ratio): this looks like a zip bomb",
                               "max_compression_ratio")
    total, packed = sum(e.size for e in entries), sum(e.packed for e in entries)
    if total > RATIO_FLOOR and total > ratio * packed:
        raise DatasetError(f"the images would expand from {_mb(packed)} to {_mb(total)}, more than {ratio:g} times "
                           "(max_compression_ratio): this looks like a zip bomb", "max_compression_ratio")
    if total > limits.max_uncompressed_bytes:
        raise DatasetError(f"the images take {_mb(total)} uncompressed, more than the limit of "
                           f"{_mb(limits.max_uncompressed_bytes)} (max_uncompressed_bytes)", "max_uncompressed_bytes")


def _check_counts(name: str, label_of: list[str], skipped: list[Skipped]) -> None:
    """Refuse a dataset that cannot be split: every label needs one image to train on and one to test."""
    if not label_of:
        left_out = f"; skipped {len(skipped):,} files ({_kinds(skipped)})" if skipped else ""
        raise DatasetError(f"no images could be read from {name}{left_out}")
    if len(label_of) == 1:
        raise DatasetError(f"{name} has only one image: a dataset needs at least 2 (one to train on, one to test)")
    lonely = sorted(label for label, n in Counter(label_of).items() if n == 1)
    if lonely:
        raise DatasetError("each label needs at least 2 images (one to train on, one to test); these have one: "
                           + ", ".join(lonely))


# ---------------------------------------------------------------- converting images


@dataclass(frozen=True)
class _Seen:
    """An image converted: its original size ("W×H") and mode, and what it says of the background."""

    size: str
    mode: str
    border: np.ndarray  # histogram of the brightness of its opaque edge pixels
    ink: int  # its brightness summed, weighted by opacity
    cover: int  # its opacity summed


class _Canvas:
    """Images fitted and centred in ``form``, before the background is known: colour premultiplied
    by opacity, and opacity (0 in the margins), so compositing onto either background is one
    addition: white adds 255 - alpha."""

    def __init__(self, n: int, form: ImageForm):
        self.form = form
        self.colour = np.zeros((n, form.channels, form.size, form.size), dtype=np.uint8)
        self.alpha = np.zeros((n, form.size, form.size), dtype=np.uint8)

    def place(self, index: int, image: Image.Image) -> tuple[np.ndarray, int, int]:
        """Fit ``image`` (L, LA, RGB or RGBA, as ``form``) into slot ``index``; its border, ink, cover."""
        channels, size = self.form.channels, self.form.size
        width, height = fitted = _fitted(image.size, size)
        transparent = image.mode in ("LA", "RGBA")
        if transparent:  # resized premultiplied, so hidden pixels' colour does not bleed into the edges
            image = image.convert("La" if image.mode == "LA" else "RGBa")
        if image.size != fitted:
            image = image.resize(fitted, _resampling(image.size, fitted), reducing_gap=3.0)
        pixels = np.asarray(image).reshape(height, width, -1)
        alpha = pixels[:, :, channels] if transparent else np.full((height, width), 255, dtype=np.uint8)
        colour = np.minimum(pixels[:, :, :channels], alpha[:, :, None])  # Lanczos may overshoot the alpha
        top, left = (size - height) // 2, (size - width) // 2
        self.colour[index, :, top : top + height, left : left + width] = colour.transpose(2, 0, 1)
        self.alpha[index, top : top + height, left : left + width] = alpha
        brightness = colour[:, :, 0] if channels == 1 else (colour @ np.array([299, 587, 114]) + 500) // 1000
        edge = np.ones((height, width), dtype=bool)
        edge[1:-1, 1:-1] = False
        border = np.bincount(brightness[edge & (alpha == 255)].ravel(), minlength=256)
        return border, int(brightness.sum()), int(alpha.sum(dtype=np.int64))

    def composite(self, kept: np.ndarray, background: str) -> np.ndarray:
        """The images at ``kept`` on ``background``: uint8 [N, H, W] grayscale or [N, 3, H, W] colour."""
        images = self.colour[kept]
        if background == "white":
            images += (255 - self.alpha[kept])[:, None]
        return images[:, 0] if self.form.channels == 1 else images


def _convert_all(entries: list[_Entry], canvas: _Canvas, limits: Limits,
                 progress: Progress | None) -> list[_Seen | Skipped]:
    """Read and convert every entry into ``canvas`` on a few threads; the outcomes in entry order."""
    outcomes = []
    pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="datasets")
    try:
        for done, outcome in enumerate(pool.map(partial(_convert, canvas=canvas, limits=limits),
                                                range(len(entries)), entries), start=1):
            outcomes.append(outcome)
            if progress is not None:
                progress(done, len(entries))
    finally:
        pool.shutdown(cancel_futures=True)  # after a damaged zip member, read no further
    return outcomes


def _convert(index: int, entry: _Entry, canvas: _Canvas, limits: Limits) -> _Seen | Skipped:
    """Decode one file's first frame into ``canvas`` slot ``index``, or say why it is skipped."""
    try:
        data = entry.read()
    except OSError as e:
        return Skipped(entry.name, f"could not be read: {e.strerror or e}")
    form = canvas.form
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = image.size
        if width * height > limits.max_image_pixels:
            return Skipped(entry.name, f"too large: {width}×{height} pixels, more than the limit of "
                                       f"{limits.max_image_pixels:,} (max_image_pixels)")
        mode = image.mode
        image.draft("L" if form.channels == 1 else "RGB", (form.size, form.size))  # JPEG: decode at 1/2-1/8 scale
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        image = _in_form_mode(image, form)
    except Image.DecompressionBombError as e:
        return Skipped(entry.name, f"too large: {e}")
    except Exception as e:  # Pillow's decoders raise many kinds (OSError, SyntaxError, struct.error, ...)
        return Skipped(entry.name, f"truncated or corrupt: {e}")
    border, ink, cover = canvas.place(index, image)
    return _Seen(f"{width}×{height}", mode, border, ink, cover)


def _in_form_mode(image: Image.Image, form: ImageForm) -> Image.Image:
    """``image`` as L or LA (grayscale form), RGB or RGBA (colour form). 16-bit and float pixels
    are scaled to 8 bits; CMYK and other colour spaces become RGB; palettes and transparent-colour
    keys become an alpha channel, dropped when it hides nothing. Grey is Pillow's "L" (ITU-R 601)."""
    if image.mode in WIDE_MODES:
        image = _to_8_bits(image, form.size)
    bands = image.getbands()
    transparent = "A" in bands or "a" in bands or image.info.get("transparency") is not None
    if transparent:
        image = image if image.mode in ("LA", "RGBA") else image.convert("RGBA")
        transparent = image.getchannel("A").getextrema()[0] < 255
    elif image.mode not in ("1", "L", "RGB"):
        image = image.convert("RGB")
    target = ("LA" if transparent else "L") if form.channels == 1 else ("RGBA" if transparent else "RGB")
    return image if image.mode == target else image.convert(target)


def _to_8_bits(image: Image.Image, size: int) -> Image.Image:
    """A 16-bit, 32-bit or float grey image as 8-bit "L", resized to fit first (a big one is then
    cheap to scale): 16-bit full scale is 65535; for 32-bit and float, the smallest of 1, 255 and
    65535 that holds the brightest pixel (they carry no bit depth)."""
    full_scale = 65535.0 if image.mode.startswith("I;16") else None
    fitted = _fitted(image.size, size)
    pixels = np.asarray(image.convert("F").resize(fitted, _resampling(image.size, fitted)), dtype=np.float32)
    if full_scale is None:
        peak = float(pixels.max())
        full_scale = 1.0 if peak <= 1 else 255.0 if peak <= 255 else 65535.0
    return Image.fromarray(np.rint(np.clip(pixels / full_scale, 0, 1) * 255).astype(np.uint8))


def _fitted(size: tuple[int, int], target: int) -> tuple[int, int]:
    """(width, height) scaled so the longer side is ``target``, keeping the aspect ratio."""
    scale = target / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _resampling(size: tuple[int, int], fitted: tuple[int, int]) -> Image.Resampling:
    """Lanczos to shrink (sharp, no aliasing); bilinear to enlarge, where Lanczos would ring around
    the strokes of a tiny image such as the 8×8 digits."""
    return Image.Resampling.LANCZOS if fitted[0] < size[0] else Image.Resampling.BILINEAR


def _background(border: np.ndarray | int, ink: int, cover: int) -> str:
    """The dataset's background, "black" or "white": from the median brightness of the opaque
    pixels on the images' edges, where the background shows; when no edge is opaque (glyphs on
    transparency), the contrary of the ink's mean brightness, so the ink stays visible. Black when
    there is nothing to go by, as MNIST."""
    if np.sum(border) > 0:
        median = int(np.searchsorted(np.cumsum(border), (np.sum(border) + 1) / 2))
        return "white" if median >= 128 else "black"
    if cover > 0:
        return "black" if ink / cover >= 0.5 else "white"
    return "black"


# ---------------------------------------------------------------- splitting and keeping


def _dataset(images: np.ndarray, labels: np.ndarray, label_names: tuple[str, ...], form: ImageForm,
             background: str, test_fraction: float, name: str, key: str | None = None) -> Dataset:
    """Split converted images into a ``Dataset`` whose info hashes its content; ``key`` defaults to
    the name's slug and the hash."""
    test = _test_indices(labels, test_fraction)
    train = np.setdiff1d(np.arange(len(labels)), test)
    arrays = {"train_images": images[train], "train_labels": labels[train],
              "test_images": images[test], "test_labels": labels[test]}
    sha256 = _content_hash(form.channels, form.size, label_names, arrays)
    info = DatasetInfo(key=key or f"{_slug(name)}-{sha256[:12]}", name=name, sha256=sha256,
                       channels=form.channels, size=form.size, label_names=label_names,
                       train_count=len(train), test_count=len(test), background=background)
    return Dataset(info, **{k: torch.from_numpy(v) for k, v in arrays.items()})


def _test_indices(labels: np.ndarray, test_fraction: float) -> np.ndarray:
    """Sorted indices of the test split: of each label's n images, round(fraction x n) at random,
    at least 1 and at most n - 1, the same for the same labels (seeded)."""
    rng = np.random.default_rng(SEED)
    test = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = min(len(members) - 1, max(1, round(test_fraction * len(members))))
        test.append(rng.permutation(members)[:count])
    return np.sort(np.concatenate(test))


def _content_hash(channels: int, size: int, label_names: tuple[str, ...], arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256(json.dumps({"channels": channels, "size": size, "label_names": list(label_names)}).encode())
    for name in ARRAYS:
        digest.update(np.ascontiguousarray(arrays[name], dtype=arrays[name].dtype.newbyteorder("<")).data)
    return digest.hexdigest()


def _slug(name: str) -> str:
    """A name as lowercase ASCII words joined by "-", for a key and a file name."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "-".join(re.findall(r"[a-z0-9]+", ascii_name.lower()))[:40].strip("-") or "dataset"


def _write_kept(path: Path, dataset: Dataset) -> None:
    arrays = {name: getattr(dataset, name).numpy() for name in ARRAYS}
    info = np.array(json.dumps(dataset.info.to_dict()))
    try:
        write_atomically(path, lambda f: np.savez_compressed(f, info=info, **arrays))
    except OSError as e:
        raise DatasetError(f"could not keep the dataset in {path}: {e.strerror or e}") from None


def _kept_info(path: Path) -> DatasetInfo:
    """A kept file's info alone: an .npz reads only the members asked for."""
    with np.load(path, allow_pickle=False) as npz:
        return DatasetInfo.from_dict(json.loads(str(npz["info"])))


def _read_kept(path: Path, key: str) -> Dataset:
    """A kept dataset, checked against its info's shapes and hash; DatasetError if missing or damaged."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            info = DatasetInfo.from_dict(json.loads(str(npz["info"])))
            arrays = {name: npz[name] for name in ARRAYS}
    except FileNotFoundError:
        raise DatasetError(f"no dataset {key!r} is kept in {path.parent}") from None
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as e:
        raise DatasetError(f"the kept dataset {key} cannot be read ({e}); add it again") from None
    intact = (info.key == key
              and all(arrays[f"{split}_images"].shape == (count, *info.image_shape) and arrays[f"{split}_images"].dtype
                      == np.uint8 and arrays[f"{split}_labels"].shape == (count,) and arrays[f"{split}_labels"].dtype
                      == np.int64 for split, count in (("train", info.train_count), ("test", info.test_count)))
              and _content_hash(info.channels, info.size, info.label_names, arrays) == info.sha256)
    if not intact:
        raise DatasetError(f"the kept dataset {key} is damaged (its content does not match its hash); add it again")
    return Dataset(info, **{name: torch.from_numpy(array) for name, array in arrays.items()})


_READING: dict[Path, threading.Lock] = {}
_READING_GUARD = threading.Lock()


def _reading_lock(data_dir: Path) -> threading.Lock:
    """This process's lock for adding to ``data_dir``. Two processes adding the same content write
    the same bytes under the same name, atomically, so no lock between processes is needed."""
    with _READING_GUARD:
        return _READING.setdefault(data_dir.resolve(), threading.Lock())


# ---------------------------------------------------------------- report helpers


def _most_common(counts: dict[str, int], shown: int = 5) -> str:
    items = list(counts.items())
    text = ", ".join(f"{name}: {n:,}" for name, n in items[:shown])
    return text + (f", and {len(items) - shown:,} others" if len(items) > shown else "")


def _by_kind(skipped: tuple[Skipped, ...] | list[Skipped]) -> dict[str, list[str]]:
    kinds: dict[str, list[str]] = {}
    for s in skipped:
        kinds.setdefault(s.kind, []).append(s.name)
    return kinds


def _kinds(skipped: list[Skipped]) -> str:
    return ", ".join(f"{len(names):,} {kind}" for kind, names in _by_kind(skipped).items())


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB"


# ---------------------------------------------------------------- command line


def main(argv=None) -> int:
    from tqdm import tqdm

    p = argparse.ArgumentParser(prog="python -m vae.datasets",
                                description="Read a folder or .zip of images as a dataset and say what it holds: "
                                "images per label, sizes, modes, background, and what was skipped and why.")
    p.add_argument("path", type=Path, help="a folder (one subfolder per label, or flat) or a .zip of one")
    p.add_argument("--color", action="store_true",
                   help=f"convert to colour RGB {COLOR.size}×{COLOR.size}, not grayscale {GRAY.size}×{GRAY.size}")
    p.add_argument("--add", action="store_true", help="also keep it in the data folder, to train on with --data KEY")
    args = p.parse_args(argv)
    form = COLOR if args.color else GRAY
    try:
        with tqdm(unit="img", desc=f"reading {args.path.name}", leave=False, delay=0.5) as bar:
            def show(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            read = add_dataset if args.add else read_images
            dataset, report = read(args.path, form, progress=show)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
    if args.add:
        print(f"kept as {dataset.info.key} in {default_data_dir() / KEPT_FOLDER}: "
              f"train on it with --data {dataset.info.key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
