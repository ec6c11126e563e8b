"""What every training run shares, wherever it executes: its progress recorded as a
``JobSnapshot`` (``RunProgress``), its training call that never raises (``run_train``), and its model as
its latest epoch ended (``snapshot_model``).

``vae.train.train`` runs in a thread; its progress events are recorded under a lock, and pages
read consistent copies with ``snapshot()``. The queue of runs (``classroom.queue``) records each
of its runs so. No Streamlit here, so the logic is unit-testable.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from vae.checkpoint import Checkpoint
from vae.config import TrainConfig
from vae.datasets import dataset_info
from vae.events import EpochEvent, Event, FrameEvent, StepEvent
from vae.film_state import Film
from vae.history import EpochRecord, History, Metrics, StepRecord
from vae.model import ConvVAE
from vae.train import TrainResult

_LOGGER = logging.getLogger(__name__)
RUNNING = ("running", "stopping")
SNAPSHOT_KEY_PREFIX = "run-"  # a snapshot_model key begins so: a moment of a run, not a file's hash


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of the job's state at one moment."""

    status: str = "queued"  # queued, running, stopping, finished, stopped or failed
    message: str = ""
    name: str = ""  # the run's checkpoint name (file stem)
    config: TrainConfig | None = None
    checkpoint: Path | None = None  # where the run writes; after the end, None if nothing was kept
    epoch: int = 0  # the epoch in progress (1-based)
    epochs: int = 0
    step: int = 0
    total_steps: int = 0
    img_per_s: float = 0.0
    eta_s: float = 0.0
    history: History = History()  # as in a checkpoint
    reconstructions: np.ndarray | None = None  # [2, n, C, H, W]: test images, reconstructions
    film: Film | None = None  # the run's film so far (vae.film), replaced at each new frame
    weights: dict | None = None  # the model's state_dict (CPU tensors) as its latest epoch ended; see snapshot_model
    weights_epoch: int = 0  # that epoch (1-based), 0 before the first ends
    started_at: float = 0.0
    ended_at: float = 0.0
    started_by: str = ""  # who pressed Start (the app passes its browser session's id)

    @property
    def running(self) -> bool:
        return self.status in RUNNING

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    @property
    def elapsed_s(self) -> float:
        return (self.ended_at or time.time()) - self.started_at if self.started_at else 0.0


class RunProgress:
    """One run's state, fed by its progress events (``on_event``, vae.train's callback) under a
    lock; ``snapshot()`` gives consistent, immutable copies."""

    def __init__(self, state: JobSnapshot):
        self._lock = threading.Lock()
        self._state = state
        self._steps: list[StepRecord] = list(state.history.steps)
        self._epochs: list[EpochRecord] = list(state.history.epochs)

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            return replace(self._state, history=History(steps=tuple(self._steps), epochs=tuple(self._epochs)))

    def update(self, **changes) -> None:
        with self._lock:
            self._state = replace(self._state, **changes)

    def request_stop(self) -> bool:
        """Mark a running run as stopping; False, and nothing changed, if it is not running."""
        with self._lock:
            if self._state.status != "running":
                return False
            self._state = replace(self._state, status="stopping", message="Stopping after the current batch…")
            return True

    def on_event(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, StepEvent):
                steps_per_epoch = event.total_steps / event.epochs
                self._steps.append(StepRecord(step=event.step, epoch=event.step / steps_per_epoch,
                                              loss=event.loss, bce=event.bce, kl=event.kl))
                message = self._state.message if self._state.status == "stopping" else "Training…"
                self._state = replace(self._state, epoch=event.epoch, epochs=event.epochs, step=event.step,
                                      total_steps=event.total_steps, img_per_s=event.img_per_s,
                                      eta_s=event.eta_s, message=message)
            elif isinstance(event, EpochEvent):
                self._epochs.append(event.record)
                self._state = replace(self._state, reconstructions=event.reconstructions, weights=event.weights,
                                      weights_epoch=event.epoch)
            elif isinstance(event, FrameEvent):
                self._state = replace(self._state, film=event.film)


def run_train(train_fn: Callable[..., TrainResult], config: TrainConfig, checkpoint_path: Path,
              **kwargs) -> tuple[str, str, Path | None]:
    """``train_fn(config, checkpoint_path, **kwargs)`` as (status, message, the checkpoint kept or
    None), never raising: a run's thread must never die silently, so a failure becomes words for
    the page (and its traceback goes to the server log)."""
    try:
        result = train_fn(config, checkpoint_path, **kwargs)
        return result.status, result.message, result.checkpoint
    except BaseException as e:
        _LOGGER.exception("Training failed")
        message = _failure_message(e)
        if checkpoint_path.is_file() and not isinstance(e, FileExistsError):  # else the file is not the run's
            return "failed", message + " The best checkpoint written before the failure is kept.", checkpoint_path
        return "failed", message, None


def snapshot_model(snap: JobSnapshot) -> Checkpoint | None:
    """The run's model as its latest epoch ended, on the CPU in eval mode, as a ``Checkpoint`` of
    that epoch whose key names the run's start and the epoch; None before the first epoch ends.
    Each call builds a fresh model, so pages can cache it per run and ``weights_epoch``."""
    if snap.weights is None:
        return None
    model = ConvVAE(snap.config.model_config())
    model.load_state_dict(snap.weights)
    return Checkpoint(model=model.eval(), train_config=snap.config, metrics=Metrics(epoch=snap.weights_epoch),
                      history=snap.history, trained_on={}, dataset=dataset_info(snap.config.data), film=snap.film,
                      film_error=None, path=snap.checkpoint,
                      key=f"{SNAPSHOT_KEY_PREFIX}{snap.name}-{snap.started_at * 1000:.0f}-epoch{snap.weights_epoch}")


def _failure_message(error: BaseException) -> str:
    """Words for the page; the traceback goes to the server log only."""
    text = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
    if isinstance(error, FileExistsError):  # the run's first write found its name taken (vae.train)
        return (f"A model named {Path(error.filename).stem!r} appeared in the checkpoint folder while this run "
                "trained; it is left as it is, and this run's model was not kept. Queue it again under another name.")
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return "The disk is full, so the checkpoint could not be written. Free some space and train again."
    if isinstance(error, (MemoryError, torch.cuda.OutOfMemoryError)) or "out of memory" in text.lower() \
            or "can't allocate memory" in text.lower():
        return "Training ran out of memory. Try a smaller batch size or a smaller model."
    return f"Training failed: {text or type(error).__name__}."
