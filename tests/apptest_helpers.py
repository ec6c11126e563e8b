"""Helpers for AppTest tests of the whole app (entry point, sidebar and pages)."""

import time
from pathlib import Path

from streamlit.testing.v1 import AppTest


ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "checkpoints" / "default.pt"


def run_app(page: str | None = None) -> AppTest:
    """The app after its first run (on ``page`` if given), checked to have raised nothing."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.2) -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
        time.sleep(interval)
