"""Waiting for something another thread or process does (a run's epoch, a server's answer): the one
polling loop of the tests and the benchmarks."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable


def until(condition: Callable[[], object], timeout: float = 120.0, interval: float = 0.1, what: str = "") -> None:
    """Poll ``condition()`` every ``interval`` s until it holds; an AssertionError after ``timeout`` s
    says what was awaited: ``what``, else the condition's own source line."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what or source(condition)}")
        time.sleep(interval)


def source(condition: Callable) -> str:
    """The line that wrote ``condition`` (a lambda at the call, as a rule), else its name."""
    try:
        return inspect.getsource(condition).strip()
    except (OSError, TypeError):
        return repr(condition)
