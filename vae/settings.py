"""Where VAE Studio keeps its files and how it runs training, read from the environment once.

The app, the command lines and the tests share this one object; a test sets it in one place
(``configure``), instead of patching module globals one by one.

    VAE_CHECKPOINT_DIR       the checkpoint folder (default: checkpoints/ beside vae/)
    VAE_DATA_DIR             the data folder: MNIST's cache, kept t-SNE maps and training means
                             (default: data/ beside vae/)
    VAE_STUDIO_WORKERS       runs trained at once on this server (default 1)
    VAE_STUDIO_RAY_ADDRESS   a Ray cluster for the runs: "local", "auto" or HOST:PORT (default none)
    VAE_STUDIO_WARM_UP       "0": no background warm-up of the default model's slow caches
    VAE_STUDIO_CLASS         a class's id: every visitor is a student of that class, whatever the URL
                             says (default none: the URL's ?class=<id>)
    VAE_STUDIO_PUBLIC_URL    the address students reach the server at, for the links Home makes
                             (default: this machine's network address and the server's port)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    checkpoint_dir: Path
    data_dir: Path
    workers: str  # as given: the run queue says when it is not a whole number, rather than failing here
    ray_address: str
    warm_up: bool
    class_id: str  # as given: the app says when it names no class, rather than failing here
    public_url: str

    @property
    def default_checkpoint(self) -> Path:
        """The bundled model every page starts from."""
        return self.checkpoint_dir / "default.pt"

    @classmethod
    def from_environment(cls, environ=os.environ) -> Settings:
        return cls(checkpoint_dir=Path(environ.get("VAE_CHECKPOINT_DIR") or ROOT / "checkpoints"),
                   data_dir=Path(environ.get("VAE_DATA_DIR") or ROOT / "data"),
                   workers=environ.get("VAE_STUDIO_WORKERS", "").strip(),
                   ray_address=environ.get("VAE_STUDIO_RAY_ADDRESS", "").strip(),
                   warm_up=environ.get("VAE_STUDIO_WARM_UP", "1").strip() != "0",
                   class_id=environ.get("VAE_STUDIO_CLASS", "").strip(),
                   public_url=environ.get("VAE_STUDIO_PUBLIC_URL", "").strip().rstrip("/"))


_current: Settings | None = None


def settings() -> Settings:
    """This process's settings, read from the environment at the first call."""
    global _current
    if _current is None:
        _current = Settings.from_environment()
    return _current


def configure(**changes) -> Settings:
    """Change this process's settings (the tests' one place); returns the settings it replaced."""
    global _current
    before = settings()
    _current = replace(before, **changes)
    return before
