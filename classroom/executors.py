"""Where a queued run executes. ``Embedded``: in threads of this process; ``classroom.ray_executor``:
each run a Ray actor. Both give the queue ``where()``, ``trains_here``, ``capacity()``, ``train(config,
path, stop=, callback=, resume=)`` (as ``vae.train.train``) and ``close()``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from vae.config import TrainConfig
from vae.data import Dataset
from vae.train import TrainResult


class Embedded:
    """Runs in threads of this process, ``workers`` at a time, sharing ``threads`` torch threads."""

    trains_here = True

    def __init__(self, workers: int, threads: int | None, datasets: Callable[[str], Dataset] | None,
                 train_fn: Callable[..., TrainResult]):
        self.workers = workers
        self._threads = max(1, (threads or torch.get_num_threads()) // workers)
        self._datasets = datasets  # a run's dataset by its key: the app's cached ones, so none is read twice
        self._train = train_fn

    def where(self) -> str:
        return "on this server" + (f", {self.workers} at a time" if self.workers > 1 else "")

    def capacity(self) -> int:
        return self.workers

    def train(self, config: TrainConfig, path: Path, **kwargs) -> TrainResult:
        torch.set_num_threads(self._threads)  # per thread: whatever count the thread that queued it had set
        data = self._datasets(config.data) if self._datasets is not None else None  # None: the run reads it
        return self._train(config, path, data=data, **kwargs)

    def close(self) -> None:
        pass
