"""A run's records, typed: its training history (one record per step and per epoch) and the kept
epoch's metrics, as ``vae.train`` writes them into a checkpoint and a run's progress collects them.

The file keeps plain dicts, so its format does not depend on these classes: ``from_dict`` reads
them once, when a checkpoint is loaded, and ``to_dict`` gives the same dicts back to whatever
saves them. A field every file has is read by key, so a file that lacks one, or names it
otherwise, fails as it is loaded (``RecordError``) rather than on the page that shows it; the few
fields older records lack are ``None`` there, and say so.
"""

from __future__ import annotations

from dataclasses import dataclass


class RecordError(ValueError):
    """A history or metrics dict lacks a field or holds one that is not a number; the message names it."""


@dataclass(frozen=True, slots=True)
class Scores:
    """Nats per image, averaged over a set of digits (``vae.metrics.evaluate``) or an epoch's
    training batches. ``loss`` is what was minimised: in evaluation the −ELBO (BCE + KL), in
    training BCE + β·KL, or the importance-weighted bound in its epochs."""

    loss: float
    bce: float
    kl: float

    @classmethod
    def from_dict(cls, scores: dict) -> Scores:
        return cls(loss=float(scores["loss"]), bce=float(scores["bce"]), kl=float(scores["kl"]))

    def to_dict(self) -> dict:
        return {"loss": self.loss, "bce": self.bce, "kl": self.kl}


def _scores(scores: dict) -> Scores | None:
    """A file writes no scores (no validation split, say) as ``{}``: ``None`` here."""
    return Scores.from_dict(scores) if scores else None


def _scores_dict(scores: Scores | None) -> dict:
    return scores.to_dict() if scores is not None else {}


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One training batch: its Scores' three numbers, flat, as the file has them."""

    step: int  # of the whole run, 1-based
    epoch: float  # epochs done when the batch ended, fractional: 0.25 is a quarter of the first
    loss: float
    bce: float
    kl: float

    @classmethod
    def from_dict(cls, step: dict) -> StepRecord:
        return cls(step=int(step["step"]), epoch=float(step["epoch"]), loss=float(step["loss"]),
                   bce=float(step["bce"]), kl=float(step["kl"]))

    def to_dict(self) -> dict:
        return {"step": self.step, "epoch": self.epoch, "loss": self.loss, "bce": self.bce, "kl": self.kl}


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """One epoch's end: its time and its scores on the training, validation and test digits (the
    curves, taken in the run's precision; ``Metrics`` has the kept epoch's in fp32)."""

    epoch: int  # 1-based
    seconds: float  # the epoch's wall time, evaluation included
    train_seconds: float | None  # the run's time in training steps so far; None in a queue's older records
    img_per_s: float
    train: Scores
    val: Scores | None  # None without a validation split
    test: Scores

    @classmethod
    def from_dict(cls, epoch: dict) -> EpochRecord:
        return cls(epoch=int(epoch["epoch"]), seconds=float(epoch["seconds"]),
                   train_seconds=float(epoch["train_seconds"]) if "train_seconds" in epoch else None,
                   img_per_s=float(epoch["img_per_s"]), train=Scores.from_dict(epoch["train"]),
                   val=_scores(epoch["val"]), test=Scores.from_dict(epoch["test"]))

    def to_dict(self) -> dict:
        record = {"epoch": self.epoch, "seconds": self.seconds, "img_per_s": self.img_per_s,
                  "train": self.train.to_dict(), "val": _scores_dict(self.val), "test": self.test.to_dict()}
        return record if self.train_seconds is None else {**record, "train_seconds": self.train_seconds}


@dataclass(frozen=True, slots=True)
class History:
    """A run's training history: every batch's scores and every epoch's. Empty for a file written
    without one (``save_checkpoint`` alone) and for a run before its first step."""

    steps: tuple[StepRecord, ...] = ()
    epochs: tuple[EpochRecord, ...] = ()

    @classmethod
    def from_dict(cls, history: dict) -> History:
        """``{"steps": [...], "epochs": [...]}`` as a checkpoint holds it (the queue keeps its runs'
        with ``steps`` empty); RecordError names the first record that cannot be read."""
        try:
            steps, epochs = history["steps"], history["epochs"]
        except (KeyError, TypeError) as e:
            raise RecordError(f"its history {_why(e)}") from None
        return cls(steps=_records(StepRecord, steps, "step"), epochs=_records(EpochRecord, epochs, "epoch"))

    def to_dict(self) -> dict:
        return {"steps": [step.to_dict() for step in self.steps], "epochs": [epoch.to_dict() for epoch in self.epochs]}


def _records(kind, rows: list[dict], what: str) -> tuple:
    records = []
    try:
        for row in rows:
            records.append(kind.from_dict(row))
    except (KeyError, TypeError, ValueError) as e:
        raise RecordError(f"its {what} {len(records) + 1} {_why(e)}") from None
    return tuple(records)


def _why(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"has no {error.args[0]!r}"
    return f"is unreadable ({error})"


@dataclass(frozen=True, slots=True)
class IWScore:
    """The importance-weighted −log p(x) on the test set, in nats per image, with K samples
    (``vae.eval --iw K --save``)."""

    k: int
    nll: float

    @classmethod
    def from_dict(cls, score: dict) -> IWScore:
        return cls(k=int(score["k"]), nll=float(score["nll"]))

    def to_dict(self) -> dict:
        return {"k": self.k, "nll": self.nll}


@dataclass(frozen=True, slots=True)
class Metrics:
    """The kept epoch's scores, taken again in fp32 as training ends (``vae.train``), and its
    −log p(x) once measured. ``epoch``, ``val`` and ``test`` are written together: all three are
    None for a file written without metrics (``save_checkpoint`` alone), and ``val`` and ``test`` for
    a running model, known only by its epoch (``classroom.jobs.snapshot_model``)."""

    epoch: int | None = None
    val: Scores | None = None  # None also without a validation split
    test: Scores | None = None
    test_iw: IWScore | None = None  # None until ``vae.eval --save`` measures it

    @classmethod
    def from_dict(cls, metrics: dict) -> Metrics:
        try:
            test_iw = IWScore.from_dict(metrics["test_iw"]) if "test_iw" in metrics else None
            if metrics.keys() <= {"test_iw"}:  # no epoch kept: a file written by save_checkpoint alone
                return cls(test_iw=test_iw)
            return cls(epoch=int(metrics["epoch"]), val=_scores(metrics["val"]), test=_scores(metrics["test"]),
                       test_iw=test_iw)
        except (KeyError, TypeError, ValueError) as e:
            raise RecordError(f"its metrics {_why(e)}") from None

    def to_dict(self) -> dict:
        kept = {} if self.epoch is None else {"epoch": self.epoch, "val": _scores_dict(self.val),
                                               "test": _scores_dict(self.test)}
        return kept if self.test_iw is None else {**kept, "test_iw": self.test_iw.to_dict()}
