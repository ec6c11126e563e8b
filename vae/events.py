"""What a training run tells its watchers as it goes (``vae.train.train``'s ``callback``): one
frozen record per kind of moment, read by attribute. They pickle, since a run on a Ray worker
sends them to the server (``classroom.queue``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .film_state import Film
from .history import EpochRecord, Metrics, Scores


@dataclass(frozen=True)
class StepEvent:
    """After each batch."""

    epoch: int  # the epoch in progress, 1-based
    epochs: int
    step: int  # of the whole run, 1-based
    total_steps: int
    loss: float  # the batch's loss parts, per image
    bce: float
    kl: float
    img_per_s: float  # over this run's training steps so far, evaluation left out
    eta_s: float
    lr: float


@dataclass(frozen=True)
class EpochEvent:
    """After each epoch's evaluation: its record in the run's history, and what a live view shows of it."""

    epoch: int  # 1-based
    epochs: int
    seconds: float  # the epoch's wall time, evaluation included
    train_seconds: float  # this run's time in training steps so far
    img_per_s: float
    train: Scores  # averaged over the epoch's batches
    val: Scores | None  # vae.metrics.evaluate's; None without a validation split
    test: Scores
    improved: bool  # this epoch's model is the one kept
    reconstructions: np.ndarray  # [2, n, C, H, W]: fixed test images and their reconstructions
    weights: dict  # a CPU copy of the model's state_dict as the epoch ended

    @property
    def record(self) -> EpochRecord:
        """The epoch's record in the run's history."""
        return EpochRecord(epoch=self.epoch, seconds=self.seconds, train_seconds=self.train_seconds,
                           img_per_s=self.img_per_s, train=self.train, val=self.val, test=self.test)


@dataclass(frozen=True)
class FrameEvent:
    """After each film frame (``vae.film``)."""

    film: Film  # the film so far


@dataclass(frozen=True)
class EndEvent:
    """Once, as the run ends."""

    status: str  # "finished", "stopped" or "failed"
    message: str
    checkpoint: str | None  # the file kept; None when no epoch completed
    best: Metrics | None  # the kept epoch and its validation and test metrics; None when no epoch completed


Event = StepEvent | EpochEvent | FrameEvent | EndEvent
