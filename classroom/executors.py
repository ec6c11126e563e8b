"""Where a queued run executes. ``Embedded``: in threads of this process; ``classroom.ray_executor``:
each run a Ray actor. Both give the queue ``where()``, ``trains_here``, ``capacity()``, ``train(config,
path, stop=, callback=, resume=)`` (as ``vae.train.train``) and ``close()``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from vae.config import TrainConfig
from vae.data import MNIST
from vae.train import TrainResult


class Embedded:
    """Runs in threads of this process, ``workers`` at a time, sharing ``threads`` torch threads."""

    trains_here = True

    def __init__(self, workers: int, threads: int | None, data: MNIST | None, train_fn: Callable[..., TrainResult]):
        self.workers = workers
        self._threads = max(1, (threads or torch.get_num_threads()) // workers)
        self._data = data
        self._train = train_fn

    def where(self) -> str:
        return "on this server" + (f", {self.workers} at a time" if self.workers > 1 else "")

    def capacity(self) -> int:
        return self.workers

    def train(self, config: TrainConfig, path: Path, **kwargs) -> TrainResult:
        torch.set_num_threads(self._threads)  # per thread: whatever count the thread that queued it had set
        return self._train(config, path, data=self._data, **kwargs)

    def close(self) -> None:
        pass
