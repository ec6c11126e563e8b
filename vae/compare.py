"""Two models side by side: their cards as one table with a difference column, their test -ELBO
against epochs or training time, and their films on one clock.

Works on loaded models (``vae.checkpoint.load_checkpoint``); the Compare page shows what this
computes, and ``python -m vae.compare A B`` prints the table.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .checkpoint import Checkpoint, CheckpointError, load_checkpoint
from .files import write_atomically
from .film import Film, kept_active_units
from .history import History
from .metrics import importance_weighted_nll

IW_SAMPLES = 100  # the importance samples of every bundled card's -log p(x)
_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    """One line of the table: a label, each model's value as shown, and B - A where both are numbers."""

    label: str
    a: str
    b: str
    difference: str = ""


def card(ckpt: Checkpoint, iw_nll: float | None = None) -> dict:
    """What the table shows of one model file, as numbers where they are numbers (None: unknown, or
    what a plain autoencoder lacks: a β, a KL and so an ELBO). ``iw_nll`` is a -log p(x) measured
    after the fact, for a card that lacks one."""
    metrics, epochs, trained_on = ckpt.metrics, ckpt.history.epochs, ckpt.trained_on
    variational = ckpt.config.variational
    test, stored_iw = metrics.test, metrics.test_iw
    return {
        "dataset": f"{ckpt.dataset.name} ({ckpt.dataset.form})",
        "architecture": ckpt.config.arch,
        "parameters": sum(p.numel() for p in ckpt.model.parameters()),
        "latent size": ckpt.config.latent_dim,
        "active units": kept_active_units(ckpt) if ckpt.film is not None else None,
        "β": ckpt.train_config.beta if variational else None,
        "epochs": len(epochs) or metrics.epoch,
        "training time (s)": sum(r.seconds for r in epochs) or None,
        "trained on": " · ".join(v for v in (trained_on.get("hardware"), trained_on.get("precision")) if v) or None,
        "test −ELBO": test.loss if test and variational else None,
        "reconstruction (BCE)": test.bce if test else None,
        "KL": test.kl if test and variational else None,
        f"−log p(x), IW K={IW_SAMPLES}": stored_iw.nll if stored_iw and stored_iw.k == IW_SAMPLES else iw_nll,
    }


def table(card_a: dict, card_b: dict) -> list[Row]:
    """The two cards line by line; numeric lines get B - A."""
    rows = []
    for label in card_a:
        a, b = card_a[label], card_b[label]
        difference = ""
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            difference = _format(b - a, label, signed=True)
        rows.append(Row(label, _format(a, label), _format(b, label), difference))
    return rows


# Settings named as the cards name them; ``device`` says where a run trained, not what it learned.
SETTING_NAMES = {"beta": "β", "lr": "learning rate", "latent_dim": "latent size", "train_size": "training images",
                 "val_size": "validation images", "arch": "architecture"}


def differing_settings(a: Checkpoint, b: Checkpoint) -> dict[str, tuple]:
    """The training settings (``TrainConfig`` fields) on which the two models differ, as
    {name: (A's, B's)}: what a comparison can blame its differences on."""
    config_a, config_b = asdict(a.train_config), asdict(b.train_config)
    return {SETTING_NAMES.get(name, name.replace("_", " ")): (config_a[name], config_b[name])
            for name in config_a if name != "device" and config_a[name] != config_b[name]}


def settings_sentence(differences: dict[str, tuple]) -> str:
    """The settings' differences in words, e.g. "Only β differs (1 against 4): ..."."""
    said = {name: f"({_setting(a)} against {_setting(b)})" for name, (a, b) in differences.items()}
    if not said:
        return "The two models were trained with the same settings."
    if len(said) == 1:
        ((name, values),) = said.items()
        return (f"Only {name} differs {values}: every other training setting is the same, so the differences in "
                "the table are that setting's doing.")
    return f"{len(said)} training settings differ: {', '.join(f'{n} {v}' for n, v in said.items())}."


def _setting(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _format(value, label: str, signed: bool = False) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    sign = "+" if signed else ""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{value:{sign},}"
    digits = 0 if "time" in label else 2 if abs(value) < 1000 else 0
    return f"{value:{sign},.{digits}f}" if label != "β" else f"{value:{sign}g}"


def elbo_curve(history: History) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epoch, cumulative training time in s, test -ELBO) of each recorded epoch: the time counts
    the epochs' wall time, evaluation included, as the model card's training time does."""
    rows = history.epochs
    epochs = np.array([r.epoch for r in rows], dtype=np.float64)
    seconds = np.cumsum([r.seconds for r in rows], dtype=np.float64)
    return epochs, seconds, np.array([r.test.loss for r in rows], dtype=np.float64)


def lockstep(film_a: Film, film_b: Film) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One clock for two films: the union of their frames' epochs, and for each of those the frame
    of each film taken at or just before it (a film that has ended stays on its last frame)."""
    epochs = np.union1d(film_a.epochs, film_b.epochs)

    def frame_at_or_before(film: Film) -> np.ndarray:
        return np.clip(np.searchsorted(film.epochs, epochs, side="right") - 1, 0, film.frames - 1)

    return epochs, frame_at_or_before(film_a), frame_at_or_before(film_b)


def cached_iw_nll(ckpt: Checkpoint, images, cache_dir: str | Path | None, progress=None,
                  k: int = IW_SAMPLES) -> float:
    """The importance-weighted -log p(x) of the checkpoint's model on ``images``, kept in ``cache_dir`` under its
    checkpoint file's hash: a minute or more of work is done once per model file. A missing,
    damaged or foreign entry is recomputed; a failed write only logs a warning."""
    key = f"{ckpt.key}-k{k}-n{len(images)}"
    path = Path(cache_dir) / f"iw-{key}.json" if cache_dir is not None else None
    if path is not None:
        try:
            entry = json.loads(path.read_text())
            if entry.get("key") == key and np.isfinite(entry.get("nll", np.nan)):
                return float(entry["nll"])
        except (OSError, ValueError, AttributeError):  # not there yet, or damaged
            pass
    nll = importance_weighted_nll(ckpt.model, images, k=k, batch_size=max(1, 20_000 // k), progress=progress)
    if path is not None:
        try:
            write_atomically(path, lambda f: f.write(json.dumps({"key": key, "nll": nll}).encode()))
        except OSError as e:
            _LOGGER.warning("Could not keep the -log p(x) estimate in %s: %s", cache_dir, e)
    return nll


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m vae.compare", description="Two models' cards side by side.")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    args = p.parse_args(argv)
    try:
        a, b = load_checkpoint(args.a), load_checkpoint(args.b)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    rows = table(card(a), card(b))
    width = max(len(r.label) for r in rows)
    print(f"{'':{width}}  {args.a.stem:>24}  {args.b.stem:>24}  {'B − A':>10}")
    for r in rows:
        print(f"{r.label:{width}}  {r.a:>24}  {r.b:>24}  {r.difference:>10}")
    print(settings_sentence(differing_settings(a, b)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
