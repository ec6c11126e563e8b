"""One checkpoint file per model: weights, configs, metrics, history and data split, with the state
to resume training in a sidecar beside it. Written atomically; read with ``torch.load(weights_only=True)``,
so a file can never run code when loaded; ``load_checkpoint`` gives a ``Checkpoint`` record, whose
metrics and history are typed records (``vae.history``) read from the file's dicts."""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import TrainConfig
from .data import MNIST_INFO, DatasetInfo
from .files import digest, write_atomically
from .film_state import Film, FilmError
from .history import History, Metrics, RecordError
from .model import ConvVAE, VAEConfig

FORMAT = "vae-studio"
# 2: the `conv` layers changed (space-to-depth encoder, deeper decoder);
# 3: channels-last flattens, encoder_hidden; every VAEConfig and TrainConfig field written out (the
#    layer, precision and importance-weighted fields came later within 3: files without them, from
#    before 2026-11-29, are refused with the fields they lack). ``variational`` (the plain
#    autoencoder) came on 2026-12-04: a file without it is a VAE (``vae.model.LATER_FIELDS``).
#    ``image_channels``, ``image_size`` and ``dataset`` came on 2026-12-07: a file without them is of
#    an MNIST model, grayscale 28x28.
VERSION = 3


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message says why in words a user understands."""


def save_checkpoint(path: str | Path, model: ConvVAE, **extra: Any) -> Path:
    """Write ``model`` (weights and config) plus ``extra`` entries (train_config, metrics, history,
    split, ...) to ``path`` atomically, so a crash or a full disk mid-write leaves the previous
    file intact."""
    payload = {
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    if "history" in payload:
        payload["history"] = _pack_steps(payload["history"])
    return _save_atomically(path, payload)


def update_checkpoint(path: str | Path, **entries: Any) -> Path:
    """Rewrite ``path`` atomically with ``entries`` added or replaced (e.g. a metric measured after
    training); the weights and every other entry stay as they are."""
    payload = {k: v for k, v in read_checkpoint(path).items() if k not in ("format", "version")}
    payload.update(entries)
    if isinstance(payload.get("history"), dict):
        payload["history"] = _pack_steps(payload["history"])
    return _save_atomically(path, payload)


def _pack_steps(history: dict) -> dict:
    """The per-step records stored as one tensor per field: as thousands of small dicts they were
    a large part of the app's cold start to unpickle (bench/RESULTS.md, 2026-11-25). ``_unpack_steps``
    restores them exactly."""
    steps = history.get("steps")
    if not steps:
        return history
    columns = {key: torch.tensor([s[key] for s in steps],
                                 dtype=torch.int64 if isinstance(value, int) else torch.float64)
               for key, value in steps[0].items()}
    return {**history, "steps": columns}


def _unpack_steps(history: dict) -> dict:
    steps = history.get("steps")
    if not isinstance(steps, dict):  # a list of records already (or none)
        return history
    rows = zip(*(column.tolist() for column in steps.values()))
    return {**history, "steps": [dict(zip(steps, row)) for row in rows]}


def resume_path(checkpoint: str | Path) -> Path:
    """The sidecar holding a run's state to resume from (last weights, optimizer, RNGs). Kept apart
    so the model file stays small; a shipped model needs only the ``.pt``."""
    return Path(checkpoint).with_suffix(".resume")


def save_resume_state(checkpoint: str | Path, state: dict) -> Path:
    return _save_atomically(resume_path(checkpoint), {"train_state": state})


def read_resume_state(checkpoint: str | Path) -> dict:
    path = resume_path(checkpoint)
    if not path.is_file():
        raise CheckpointError(
            f"{Path(checkpoint).name} cannot be resumed: its training state ({path.name}) is missing."
        )
    return read_checkpoint(path)["train_state"]


def _save_atomically(path: str | Path, payload: dict) -> Path:
    return write_atomically(path, lambda f: torch.save({"format": FORMAT, "version": VERSION, **payload}, f),
                            durable=True)


def read_checkpoint(path: str | Path) -> dict:
    """The raw checkpoint dict, after checking it is ours; raises CheckpointError otherwise."""
    return _read(Path(path))[0]


def _read(path: Path) -> tuple[dict, bytes]:
    """(the raw checkpoint dict, the bytes it was read from): read once, so that a hash of them is
    of what was loaded even while a run rewrites the file."""
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}.")
    data = path.read_bytes()
    if not data:
        raise CheckpointError(f"{path.name} is empty (was its write interrupted?).")
    if not zipfile.is_zipfile(io.BytesIO(data)):  # torch.save writes a zip archive; anything else is damaged or foreign
        raise CheckpointError(f"{path.name} is corrupt or truncated, or not a checkpoint file at all.")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses any global it does not know: the file tried to run code or carries
        # objects that are not plain tensors and containers.
        raise CheckpointError(
            f"{path.name} was refused: it holds objects a checkpoint must not ({_first_line(e)})."
        ) from None
    except Exception as e:  # torch raises many types for damaged bytes (EOFError, KeyError, ...)
        raise CheckpointError(f"{path.name} is corrupt or truncated ({_first_line(e)}).") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not a VAE Studio checkpoint.")
    if payload.get("version") != VERSION:
        raise CheckpointError(
            f"{path.name} has checkpoint version {payload.get('version')}; this VAE Studio reads {VERSION}."
        )
    if isinstance(payload.get("history"), dict):
        try:
            payload["history"] = _unpack_steps(payload["history"])
        except (AttributeError, TypeError) as e:
            raise CheckpointError(
                f"{path.name} is corrupt: its training history is unreadable ({_first_line(e)})."
            ) from None
    return payload, data


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """A model file, loaded: the model in eval mode and what its file says of it. Read-only: the
    app shares one per file among all its sessions (``update_checkpoint`` writes a change)."""

    model: ConvVAE
    train_config: TrainConfig  # the run's settings; fields the file lacks take the model's and today's defaults
    metrics: Metrics  # of the kept epoch, and its -log p(x) once measured
    history: History  # of the whole run: every step's and every epoch's scores
    trained_on: dict  # device, hardware and precision of the run
    dataset: DatasetInfo  # what it was trained on: MNIST for a file written before datasets were recorded
    film: Film | None  # None for a file without one, or with one that cannot be shown ...
    film_error: str | None  # ... whose reason this says: a damaged film never keeps a sound model from loading
    path: Path
    key: str  # a hash of the file's bytes (``vae.files.digest``): what is measured of the model is filed under it

    @property
    def config(self) -> VAEConfig:
        return self.model.config

    @property
    def name(self) -> str:
        return self.path.stem


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """The ``Checkpoint`` of ``path``, its model on ``device``; raises CheckpointError saying why
    a file cannot be used."""
    payload, data = _read(Path(path))
    name = Path(path).name
    try:
        config = VAEConfig.from_dict(payload["model_config"])
        model = ConvVAE(config)
        model.load_state_dict(payload["state_dict"])
        train_config = stored_train_config({**payload, "model_config": config.to_dict()})
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"{name} does not match its model configuration ({_first_line(e)})."
        ) from None
    film, film_error = None, None
    if "film" in payload:
        try:
            film = Film.from_state(payload["film"], config.latent_dim)
        except FilmError as e:
            film_error = str(e)
    return Checkpoint(model=model.to(device).eval(), train_config=train_config, metrics=stored_metrics(payload, name),
                      history=stored_history(payload, name), trained_on=payload.get("trained_on", {}),
                      dataset=stored_dataset(payload, config, name),
                      film=film, film_error=film_error, path=Path(path), key=digest(data))


def stored_train_config(payload: dict) -> TrainConfig:
    """A raw checkpoint's run settings: its ``train_config``; a file written without one (by
    ``save_checkpoint`` alone) has its model's fields and today's defaults for the rest."""
    return TrainConfig.from_dict({**payload["model_config"], **payload.get("train_config", {})})


def stored_dataset(payload: dict, config: VAEConfig, name: str) -> DatasetInfo:
    """A raw checkpoint's dataset. Files from before datasets were recorded are MNIST's, which is
    all a grayscale 28x28 model could then be trained on; CheckpointError for a damaged record."""
    if "dataset" not in payload and config.image_shape == (MNIST_INFO.channels, MNIST_INFO.size, MNIST_INFO.size):
        return MNIST_INFO
    try:
        return DatasetInfo.from_dict(payload["dataset"])
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{name} does not say which dataset it was trained on ({_first_line(e)}).") from None


def stored_metrics(payload: dict, name: str) -> Metrics:
    """A raw checkpoint's metrics as a record; none for a file written without them (by
    ``save_checkpoint`` alone). CheckpointError, naming the field, for metrics that lack one."""
    return _record(Metrics.from_dict, payload.get("metrics", {}), name)


def stored_history(payload: dict, name: str) -> History:
    """A raw checkpoint's training history as a record, as ``stored_metrics``."""
    return _record(History.from_dict, payload["history"], name) if "history" in payload else History()


def _record(read, entry: dict, name: str):
    """``read(entry)``, a damaged entry said as the damage of the file ``name``."""
    try:
        return read(entry)
    except RecordError as e:
        raise CheckpointError(f"{name} is corrupt: {e}.") from None


def _first_line(error: BaseException) -> str:
    """The first informative line of an error (load_state_dict's first line is only a heading)."""
    lines = [line.strip() for line in str(error).strip().splitlines()]
    lines = [line for line in lines if line and not line.endswith(":")] or lines
    return lines[0][:200] if lines else type(error).__name__
