"""The work gate, without Streamlit: at most a few pieces of page model work at once while a run
trains on this server's CPU (``studio.gate`` gives each page its slot)."""

from __future__ import annotations

import threading
from collections.abc import Callable


class ModelWorkGate:
    """Admits at most ``slots`` pieces of page model work at once while a run trains, first come
    first served: a queue that a page can see itself waiting in (and say so), instead of every
    page and the run slowing one another down together."""

    def __init__(self, slots: int, training: Callable[[], bool]):
        self.slots = slots
        self._training = training
        self._free = threading.BoundedSemaphore(slots)  # a release of a slot never taken raises
        self._lock = threading.Lock()
        self.waiting = 0  # pages queued right now

    def acquire(self, timeout: float | None = None) -> bool | None:
        """Take a slot within ``timeout`` seconds (True), or time out (False); None, and nothing
        taken, when no run trains: then nothing is queued."""
        if not self._training():
            return None
        with self._lock:
            self.waiting += 1
        try:
            return self._free.acquire(timeout=timeout)
        finally:
            with self._lock:
                self.waiting -= 1

    def release(self) -> None:
        self._free.release()
