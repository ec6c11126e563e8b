"""VAE Studio's core: MNIST, the convolutional VAE, its loss and metrics, training and checkpoints.

Imports no Streamlit, so everything the app shows can be done from Python or the command line.
"""

from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .data import load_mnist
from .model import ConvVAE, VAEConfig

__all__ = ["ConvVAE", "VAEConfig", "Checkpoint", "load_checkpoint", "save_checkpoint", "load_mnist", "CheckpointError"]
