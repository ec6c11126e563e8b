"""The convolutional VAE: a fast strided default and the seed tutorial's exact model.

Both architectures share one interface: ``encode`` gives the posterior's mean and log-variance,
``decode_logits``/``decode`` map latents to Bernoulli logits/probabilities over the image's pixels
(grayscale 28x28 as MNIST, or colour 3x32x32 for a dataset of one's own),
and the loss (``vae/loss.py``) is computed from logits for numerical stability. Either can be
built as a plain autoencoder (``variational=False``): the same layers without the log-variance
head, so its code is the mean alone, decoded as it is; the baseline that shows what the
variational part adds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace

import torch
from torch import nn

ARCHS = ("conv", "tutorial")
# Fields added after the bundled VAEs were written, with the value a file without them means.
LATER_FIELDS = {"variational": True, "image_channels": 1, "image_size": 28}
IMAGE_CHANNELS = (1, 3)  # grayscale or RGB


class ConfigError(ValueError):
    """A setting that cannot work. ``field`` names it (None for a rule across fields); ``problem``
    says what is wrong ("must be ..., got ..."), so a form can put it next to its own label."""

    def __init__(self, field: str | None, problem: str):
        super().__init__(f"{field} {problem}" if field else problem)
        self.field, self.problem = field, problem


@dataclass(frozen=True)
class Limit:
    """The range [low, high] a numeric setting must lie in: integers where both ends are (never a
    bool, though Python counts one an int). Validation, ``python -m vae.train``'s help and the app's
    form all read the same table (``vae.config.LIMITS``), so each says the same."""

    low: int | float
    high: int | float

    @property
    def integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)

    def __str__(self) -> str:
        return f"[{_number(self.low)}, {_number(self.high)}]"

    def check(self, name: str, value, high: int | float | None = None, why: str = "") -> None:
        """Raise a ConfigError naming ``name`` and the range unless ``value`` lies in it; ``high``
        lowers the upper end where another setting bounds it, and ``why`` says which."""
        limit = self if high is None else replace(self, high=high)
        kind = int if self.integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind) or not limit.low <= value <= limit.high:
            noun = "an integer" if self.integer else "a number"
            raise ConfigError(name, f"must be {noun} in {limit}{why}, got {value!r}")


def _number(x: int | float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


# The model's sizes: room for any MNIST experiment a class runs, yet the largest model (30M
# parameters: channels 64, 4 + 4 decoder convs, MLPs 2048 wide, latent 512) keeps about 0.85 MB of
# activations per image for its backward pass: 3.5 GB at the most images a training step may
# decode (vae.config.DECODED_PER_STEP). A latent of 10^6, accepted before these limits, needed 24 GB.
MODEL_LIMITS = {
    "latent_dim": Limit(1, 512),  # the tutorial's 256 and then some; MNIST's 784 pixels need no more
    "channels": Limit(1, 64),  # the default 16; the memory above grows with it
    "hidden": Limit(1, 2048),  # the decoder's MLP; default 512
    "encoder_hidden": Limit(1, 2048),  # the encoder's MLP; default 512
    "decoder_convs_7x7": Limit(0, 4),  # default 0: measured to help less than convs at 14x14
    "decoder_convs_14x14": Limit(0, 4),  # default 2
    "output_kernel": Limit(1, 7),  # and odd; default 3: a cell's neighbourhood, 7 already three cells each way
}
IMAGE_SIZE = Limit(12, 64)  # and a multiple of 4 (two halvings): MNIST's 28, a colour set's 32; set by the dataset


@dataclass(frozen=True)
class VAEConfig:
    """Everything needed to rebuild a model's layers (stored in every checkpoint).

    ``conv`` (default): a stride-4 conv to 7x7 and an MLP bottleneck; the decoder upsamples twice
    by sub-pixel convolution, with 3x3 convs at 14x14 in between. ``channels`` is the width at
    14x14 (the 7x7 maps have twice as many); ``encoder_hidden`` and ``hidden`` are the widths of
    the encoder's and the decoder's MLP; ``decoder_convs_7x7`` and ``decoder_convs_14x14`` count
    the 3x3 convs the decoder runs at 7x7 before upsampling and at 14x14 before its last layer;
    ``output_kernel`` is the size of that last conv, which makes the 2x2 sub-pixels of each 14x14
    cell (3: from its neighbourhood; 1: from that cell alone, faster, worse in likelihood). Their
    defaults are the measured choice (bench/RESULTS.md, 2026-11-25). ``tutorial``: the seed
    article's model; its layer sizes are fixed, so only ``latent_dim`` applies. ``variational``:
    False makes a plain autoencoder (no log-variance head, z = mu, no KL). ``image_channels`` and
    ``image_size``: the images' form, 1 x 28 x 28 (MNIST's) or 3 x 32 x 32 (colour); the sizes
    above name MNIST's maps, a quarter and a half of ``image_size`` (8x8 and 16x16 at 32).
    """

    arch: str = "conv"
    latent_dim: int = 32
    channels: int = 16
    hidden: int = 512
    encoder_hidden: int = 512
    decoder_convs_7x7: int = 0
    decoder_convs_14x14: int = 2
    output_kernel: int = 3
    variational: bool = True
    image_channels: int = 1
    image_size: int = 28

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ConfigError("arch", f"must be one of {ARCHS}, got {self.arch!r}")
        for name, limit in MODEL_LIMITS.items():
            limit.check(name, getattr(self, name))
        if self.output_kernel % 2 == 0:
            raise ConfigError("output_kernel", f"must be odd (the output keeps its size), got {self.output_kernel}")
        if not isinstance(self.variational, bool):
            raise ConfigError("variational", f"must be True or False, got {self.variational!r}")
        if self.image_channels not in IMAGE_CHANNELS:
            raise ConfigError("image_channels", f"must be 1 (grayscale) or 3 (colour), got {self.image_channels!r}")
        IMAGE_SIZE.check("image_size", self.image_size)
        if self.image_size % 4:
            raise ConfigError("image_size", f"must be a multiple of 4 (the encoder halves it twice), "
                                            f"got {self.image_size}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of the images the model takes and makes."""
        return self.image_channels, self.image_size, self.image_size

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> VAEConfig:
        """The config a checkpoint stores, which names every field (README: checkpoint version 3) but
        those of ``LATER_FIELDS``."""
        d = {**LATER_FIELDS, **d}
        missing = [f.name for f in fields(cls) if f.name not in d]
        if missing:
            raise ValueError(f"it lacks {', '.join(missing)}: it was written before those fields existed")
        return cls(**{f.name: d[f.name] for f in fields(cls)})


class ConvVAE(nn.Module):
    """A VAE over 1x28x28 (or 3x32x32) images with a diagonal-Gaussian posterior and a Bernoulli decoder."""

    def __init__(self, config: VAEConfig | None = None):
        super().__init__()
        self.config = config = config or VAEConfig()
        colours, cells = config.image_channels, config.image_size // 4  # cells: the coarsest map's side
        if config.arch == "tutorial":
            self.encoder, self.decoder = _tutorial_layers(colours)
            side = config.image_size - 8  # two 5x5 convs without padding
            self.unflatten = nn.Unflatten(1, (32, side, side))
            features = 32 * side * side
            self.fc_mu = nn.Linear(features, config.latent_dim)
            self.fc_logvar = nn.Linear(features, config.latent_dim) if config.variational else None
            self.fc_decode = nn.Linear(config.latent_dim, features)
        else:
            c, h, eh = config.channels, config.hidden, config.encoder_hidden
            # The encoder's first layer is a 6x6 stride-4 conv written as space-to-depth plus a
            # 3x3 stride-2 conv: the same function, but 4 input channels keep oneDNN on its fast
            # path, and no full-resolution feature map is ever built (bench/RESULTS.md).
            self.encoder = nn.Sequential(
                nn.PixelUnshuffle(2),  # 4 x 14x14
                nn.Conv2d(4 * colours, 2 * c, 3, stride=2, padding=1), nn.SiLU(),  # 2c x 7x7
                ChannelsLastFlatten(),
                nn.Linear(2 * c * cells**2, eh), nn.SiLU(),
            )
            self.fc_mu = nn.Linear(eh, config.latent_dim)
            self.fc_logvar = nn.Linear(eh, config.latent_dim) if config.variational else None
            self.fc_decode = nn.Sequential(
                nn.Linear(config.latent_dim, h), nn.SiLU(), nn.Linear(h, 2 * c * cells**2)
            )
            self.unflatten = ChannelsLastUnflatten(2 * c, cells, cells)
            # Upsampling by sub-pixel convolution (conv, then PixelShuffle): on the CPU it is
            # several times faster than ConvTranspose2d, which falls off oneDNN's fast path.
            # Convs at 14x14 are where extra decoder capacity paid most per second of training; a
            # conv at 7x7 helped less and cost more (bench/RESULTS.md).
            k = config.output_kernel
            self.decoder = nn.Sequential(
                nn.SiLU(),
                *_conv_stack(2 * c, config.decoder_convs_7x7),
                nn.Conv2d(2 * c, 4 * c, 3, padding=1), nn.PixelShuffle(2), nn.SiLU(),  # c x 14x14
                *_conv_stack(c, config.decoder_convs_14x14),
                nn.Conv2d(c, 4 * colours, k, padding=k // 2), nn.PixelShuffle(2),  # C x 28x28 logits
            )
            # Channels-last feature maps: oneDNN's convolutions run markedly faster on them
            # (bench/RESULTS.md), and the two flattens above are then free views.
            self.to(memory_format=torch.channels_last)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Posterior q(z|x) = N(mu, exp(logvar)) for images x in [0,1], shaped [B,C,H,W]; an
        autoencoder's code is mu alone (logvar None)."""
        features = self.encoder(x)
        if self.fc_logvar is None:
            return self.fc_mu(features), None
        return self.fc_mu(features), self.fc_logvar(features)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits [B,C,H,W] for latents z [B, latent_dim]."""
        return self.decoder(self.unflatten(self.fc_decode(z)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities in [0,1], shaped [B,C,H,W]."""
        return torch.sigmoid(self.decode_logits(z))

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor | None, eps: torch.Tensor | None = None
    ) -> torch.Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I) (drawn here unless given): eps carries the
        randomness, so gradients flow through the sample to mu and logvar. An autoencoder's z is mu."""
        if logvar is None:
            return mu
        if eps is None:
            eps = torch.randn_like(mu)
        return mu + eps * torch.exp(0.5 * logvar)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(logits, mu, logvar): one posterior sample decoded (an autoencoder's mu); pass all three
        to ``vae_loss``."""
        mu, logvar = self.encode(x)
        return self.decode_logits(self.reparameterize(mu, logvar)), mu, logvar

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images [n,C,H,W] decoded from the prior N(0, I)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator, device="cpu").to(device)
        return self.decode(z)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode for the block, then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _conv_stack(channels: int, n: int) -> list[nn.Module]:
    """n 3x3 convs, each followed by SiLU, keeping the channel count and the map size."""
    return [layer for _ in range(n) for layer in (nn.Conv2d(channels, channels, 3, padding=1), nn.SiLU())]


def _tutorial_layers(colours: int) -> tuple[nn.Module, nn.Module]:
    """The article's layers: conv 5x5 1->16->32 (28->24->20) and its transposed mirror."""
    encoder = nn.Sequential(
        nn.Conv2d(colours, 16, 5), nn.ReLU(), nn.Conv2d(16, 32, 5), nn.ReLU(), nn.Flatten()
    )
    decoder = nn.Sequential(
        nn.ReLU(), nn.ConvTranspose2d(32, 16, 5), nn.ReLU(), nn.ConvTranspose2d(16, colours, 5)
    )
    return encoder, decoder


class ChannelsLastFlatten(nn.Module):
    """[B, C, H, W] -> [B, H*W*C], in channels-last order: a view, no copy, of a channels-last map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).flatten(1)


class ChannelsLastUnflatten(nn.Module):
    """[B, H*W*C] -> [B, C, H, W] channels-last: the inverse of ``ChannelsLastFlatten``, also a view."""

    def __init__(self, channels: int, height: int, width: int):
        super().__init__()
        self.shape = (height, width, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(-1, *self.shape).permute(0, 3, 1, 2)
