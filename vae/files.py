"""Files: written so that a crash, a kill or a full disk never leaves half of one under its real
name, and named by their bytes to key what is measured of them."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


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


def digest(data: bytes) -> str:
    """A short hash of a file's bytes: the key of what is measured of it after the fact."""
    return hashlib.sha256(data).hexdigest()[:32]
