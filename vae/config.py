"""A training run's settings: ``TrainConfig``, which validates them, drives ``python -m vae.train``'s
flags, and travels with the model in its checkpoint (``vae.checkpoint.Checkpoint.train_config``).
Apart from the training loop, so that reading a checkpoint does not import it."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .data import MAX_IMAGES, MNIST_INFO, TEST_SIZE, DatasetInfo
from .device import PRECISIONS
from .model import MODEL_LIMITS, ConfigError, Limit, VAEConfig

SCHEDULES = ("linear", "onecycle", "constant")
VAL_SHARE = Limit(0.01, 0.5)  # val_size as a share of the training split, for a small dataset
OWN_DATA_VAL_SHARE = 0.1  # the share a dataset other than MNIST validates on: 1,000 images would leave a small one few
# The most images one training step decodes, batch_size x iw_samples (the IW bound decodes each
# image iw_samples times): the largest model's activations stay near 3.5 GB (vae.model.MODEL_LIMITS).
DECODED_PER_STEP = 4096
# Every numeric setting's range, read by TrainConfig.validate, `python -m vae.train --help` and the
# app's form. Past each upper end a teaching run on a CPU gains nothing, and none can exhaust a machine.
LIMITS = {
    **MODEL_LIMITS,
    "beta": Limit(0.0, 100.0),  # a sweep spans 0.25 to 8; far past that the KL term closes every dimension
    "epochs": Limit(1, 1000),  # ~12 s each for the default model on a fast CPU: 1000 is over 3 hours
    "batch_size": Limit(1, DECODED_PER_STEP),
    "lr": Limit(1e-6, 1.0),  # default 7e-3; below 1e-6 a run of 1000 epochs barely moves
    "weight_decay": Limit(0.0, 1.0),  # with lr <= 1, a step's decay factor 1 - lr * decay stays >= 0
    "kl_warmup_epochs": Limit(0.0, 1000.0),  # as long as the longest run
    "iw_samples": Limit(1, 64),  # the bundled default trains on 2; and batch_size x iw_samples <= DECODED_PER_STEP
    "iw_epochs": Limit(0, 1000),  # and at most the run's epochs
    "seed": Limit(0, 2**32 - 1),  # any 32-bit seed
    "train_size": Limit(1, MAX_IMAGES),  # and at most what the validation split leaves; None trains on all
    "val_size": Limit(0, TEST_SIZE),  # a count: as many as MNIST's test split; it is scored every epoch
}


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
    image_channels: int = VAEConfig.image_channels  # the dataset's form: 3 for colour (``--color``)
    image_size: int = VAEConfig.image_size
    data: str = "mnist"  # the dataset's key (vae.datasets): "mnist", "digits" or an added dataset's
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
    val_size: int | float = 1000  # validation images: a count, or a float in (0, 1) for a share of the training split
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
        bounded = {"iw_epochs", "train_size", "val_size"}  # checked below, with what bounds them
        for name, limit in LIMITS.items():
            if name not in MODEL_LIMITS and name not in bounded:
                limit.check(name, getattr(self, name))
        if isinstance(self.val_size, float):
            VAL_SHARE.check("val_size", self.val_size, why=" as a share of the training split")
        else:
            LIMITS["val_size"].check("val_size", self.val_size)
        LIMITS["iw_epochs"].check("iw_epochs", self.iw_epochs, high=self.epochs, why=f" (at most epochs={self.epochs})")
        if self.train_size is not None:  # None: all the training images the validation split leaves
            LIMITS["train_size"].check("train_size", self.train_size)
        if self.data == "mnist":  # the others are checked against their sizes once loaded (check_dataset)
            self.check_dataset(MNIST_INFO)
        checks = [
            ("schedule", self.schedule in SCHEDULES, f"one of {SCHEDULES}"),
            ("device", self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"), "auto, cpu or cuda"),
            ("precision", self.precision in PRECISIONS, f"one of {PRECISIONS}"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(name, f"must be {expected}, got {getattr(self, name)!r}")
        start = self.fine_tune_start
        if start is not None and self.batch_size * self.iw_samples > DECODED_PER_STEP:
            raise ConfigError("iw_samples", f"times the batch size must be at most {DECODED_PER_STEP} (the images "
                                            f"a training step decodes), got {self.iw_samples} x {self.batch_size}")
        if start is not None and (self.beta != 1 or self.kl_warmup_epochs > start):
            raise ConfigError(None, "the importance-weighted epochs bound log p(x) itself, so they need beta 1 "
                                    "and a KL warm-up that has ended before them")
        if not self.variational and (self.beta != 1 or self.kl_warmup_epochs > 0 or start is not None):
            raise ConfigError(None, "an autoencoder has no KL term to weigh and no posterior to sample, so it "
                                    "takes beta 1, no KL warm-up and no importance-weighted epochs")

    def validation_count(self, n_train: int) -> int:
        """How many of a dataset's ``n_train`` training images the run validates on."""
        return max(1, round(self.val_size * n_train)) if isinstance(self.val_size, float) else self.val_size

    def check_dataset(self, info: DatasetInfo) -> None:
        """Raise a ConfigError unless the run fits the dataset it trains on: its image form, and a
        validation split that leaves training images (and ``train_size`` of them, if set)."""
        if (self.image_channels, self.image_size) != (info.channels, info.size):
            raise ConfigError("image_channels", f"must match {info.name}'s images ({info.form}), got "
                                                f"{self.image_channels} x {self.image_size}x{self.image_size}")
        n_val = self.validation_count(info.train_count)
        left = info.train_count - n_val
        if left < 1:
            raise ConfigError("val_size", f"must leave training images: {info.name} has {info.train_count:,} "
                                          f"and val_size={self.val_size} takes {n_val:,} (give a share, e.g. 0.1)")
        if self.train_size is not None:
            LIMITS["train_size"].check("train_size", self.train_size, high=left,
                                       why=f" (the {info.train_count} training images of {info.name} less "
                                           f"val_size={self.val_size})")

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
