"""A training run's settings: ``TrainConfig``, which validates them, drives ``python -m vae.train``'s
flags, and travels with the model in its checkpoint (``vae.checkpoint.Checkpoint.train_config``).
Apart from the training loop, so that reading a checkpoint does not import it."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from .device import PRECISIONS
from .model import ConfigError, VAEConfig

SCHEDULES = ("linear", "onecycle", "constant")


@dataclass
class TrainConfig:
    """A training run. ``TrainConfig.tutorial()`` is the seed article's recipe."""

    # The model's fields, with VAEConfig's defaults: the layers are defined in one place.
    arch: str = VAEConfig.arch
    latent_dim: int = VAEConfig.latent_dim
    channels: int = VAEConfig.channels
    hidden: int = VAEConfig.hidden
    encoder_hidden: int = VAEConfig.encoder_hidden
    decoder_convs_7x7: int = VAEConfig.decoder_convs_7x7
    decoder_convs_14x14: int = VAEConfig.decoder_convs_14x14
    output_kernel: int = VAEConfig.output_kernel
    variational: bool = VAEConfig.variational  # False: a plain autoencoder (``--autoencoder``)
    beta: float = 1.0
    epochs: int = 30
    batch_size: int = 256
    lr: float = 7e-3
    weight_decay: float = 0.05  # AdamW's decoupled decay; it narrows the train/test gap of long runs
    schedule: str = "linear"  # see learning_rate
    kl_warmup_epochs: float = 0.0
    iw_samples: int = 1  # with iw_epochs: the last epochs train on the importance-weighted bound; see iw_samples_at
    iw_epochs: int = 0
    seed: int = 0
    train_size: int | None = None  # a random subset of the training split, for quick runs
    val_size: int = 1000
    device: str = "auto"
    precision: str = "auto"  # of the forward passes, in training and in the per-epoch curves; see autocast_dtype

    @classmethod
    def tutorial(cls, **overrides) -> TrainConfig:
        base = dict(arch="tutorial", latent_dim=256, epochs=10, batch_size=128, lr=1e-3, weight_decay=0.0,
                    schedule="constant", precision="fp32")
        return cls(**{**base, **overrides})

    def model_config(self) -> VAEConfig:
        return VAEConfig(**{f.name: getattr(self, f.name) for f in fields(VAEConfig)})

    def validate(self) -> None:
        """Raise a ConfigError (a ValueError) naming the first field whose value cannot work."""
        self.model_config()  # checks the model's fields
        checks = [
            ("beta", self.beta >= 0 and math.isfinite(self.beta), "a finite number >= 0"),
            ("epochs", isinstance(self.epochs, int) and self.epochs >= 1, "an integer >= 1"),
            ("batch_size", isinstance(self.batch_size, int) and 1 <= self.batch_size <= 65536,
             "an integer in [1, 65536]"),
            ("lr", 0 < self.lr <= 1, "in (0, 1]"),
            ("weight_decay", 0 <= self.weight_decay < 1, "in [0, 1)"),
            ("schedule", self.schedule in SCHEDULES, f"one of {SCHEDULES}"),
            ("kl_warmup_epochs", self.kl_warmup_epochs >= 0, ">= 0"),
            ("iw_samples", isinstance(self.iw_samples, int) and 1 <= self.iw_samples <= 64, "an integer in [1, 64]"),
            ("iw_epochs", isinstance(self.iw_epochs, int) and 0 <= self.iw_epochs <= self.epochs,
             f"an integer in [0, epochs={self.epochs}]"),
            ("train_size", self.train_size is None or self.train_size >= 1, "empty or an integer >= 1"),
            ("val_size", 0 <= self.val_size < 60000, "in [0, 60000)"),
            ("device", self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"), "auto, cpu or cuda"),
            ("precision", self.precision in PRECISIONS, f"one of {PRECISIONS}"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(name, f"must be {expected}, got {getattr(self, name)!r}")
        start = self.fine_tune_start
        if start is not None and (self.beta != 1 or self.kl_warmup_epochs > start):
            raise ConfigError(None, "the importance-weighted epochs bound log p(x) itself, so they need beta 1 "
                                    "and a KL warm-up that has ended before them")
        if not self.variational and (self.beta != 1 or self.kl_warmup_epochs > 0 or start is not None):
            raise ConfigError(None, "an autoencoder has no KL term to weigh and no posterior to sample, so it "
                                    "takes beta 1, no KL warm-up and no importance-weighted epochs")

    @classmethod
    def from_dict(cls, saved: dict) -> TrainConfig:
        """The config of a checkpoint's ``train_config``; fields it lacks take today's defaults."""
        return cls(**{f.name: saved[f.name] for f in fields(cls) if f.name in saved})

    @property
    def fine_tune_start(self) -> int | None:
        """The first epoch (0-based) trained on the importance-weighted bound, or None: see ``iw_samples_at``."""
        return self.epochs - self.iw_epochs if self.iw_samples > 1 and self.iw_epochs > 0 else None

    def iw_samples_at(self, epoch: int) -> int:
        """Samples per image in the training objective of ``epoch`` (0-based): 1 is the ELBO; the last
        ``iw_epochs`` epochs use ``iw_samples``, the importance-weighted bound (IWAE), which trains
        for -log p(x) itself: at equal training time it gains IW -log p(x) and gives up some -ELBO
        (bench/RESULTS.md, 2026-11-29)."""
        start = self.fine_tune_start
        return self.iw_samples if start is not None and epoch >= start else 1
