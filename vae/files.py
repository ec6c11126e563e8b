"""Files: written so that a crash, a kill or a full disk never leaves half of one under its real
name, named by their bytes to key what is measured of them, and arrays measured once, kept on disk."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

_LOGGER = logging.getLogger(__name__)


def write_atomically(path: str | Path, write: Callable[[BinaryIO], None], *, durable: bool = False) -> Path:
    """Call ``write`` on a temporary file beside ``path`` (``.NAME.XXXX.tmp``), then rename it over
    ``path``. ``durable``: fsync before the rename, so the new content also survives a power cut.
    On any failure the temporary file is removed, the error raised, and ``path`` keeps its old content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def rename_new(source: str | Path, path: str | Path) -> Path:
    """Rename ``source`` to ``path`` only if no file has that name, as a run's first write of its
    model: a model another run or a command wrote there is never replaced (a plain rename would).
    A hard link fails when the name is taken, where a rename replaces; FileExistsError, naming
    ``path``, then. ``source`` is gone either way."""
    path = Path(path)
    try:
        os.link(source, path)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "another file took this name", str(path)) from None
    finally:
        Path(source).unlink(missing_ok=True)
    return path


def digest(data: bytes) -> str:
    """A short hash of a file's bytes: the key of what is measured of it after the fact."""
    return hashlib.sha256(data).hexdigest()[:32]


def kept_arrays(path: str | Path | None, key: str, shapes: dict[str, tuple[int, ...]],
                make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The float32 arrays named in ``shapes``, made by ``make()`` once and kept in an .npz at
    ``path`` that names ``key`` inside it: read back when that file has this key and finite arrays
    of these shapes; a missing, damaged or foreign file is made again. A failed write only logs a
    warning (the arrays are still returned); no ``path``: only made."""
    if path is not None:
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in shapes}
                if str(stored["key"]) == key and all(
                        a.shape == shapes[name] and a.dtype == np.float32 and np.isfinite(a).all()
                        for name, a in arrays.items()):
                    return arrays
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # not there yet, or damaged
            pass
    arrays = {name: np.asarray(array, dtype=np.float32) for name, array in make().items()}
    if path is not None:
        try:
            write_atomically(path, lambda f: np.savez(f, key=np.array(key), **arrays))
        except OSError as e:
            _LOGGER.warning("Could not keep %s: %s", path, e)
    return arrays
