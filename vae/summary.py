"""A model's architecture read off the model itself, so the description can never drift from the code."""

from __future__ import annotations

import torch
from torch import nn

from .device import model_device
from .model import ConvVAE, eval_mode


@torch.no_grad()
def layer_table(model: ConvVAE) -> list[dict]:
    """One row per leaf layer, in the order a forward pass runs them: ``name`` (module path),
    ``layer`` (type), ``details`` (its settings), ``output_shape`` (without the batch dimension)
    and ``params`` (trainable weights it owns).

    Runs one dummy image through ``encode`` and ``decode_logits`` (decoding the mean, so no noise
    is drawn) with forward hooks on every leaf module."""
    rows: list[dict] = []

    def record(name: str):
        def hook(module: nn.Module, _inputs, output: torch.Tensor) -> None:
            rows.append({
                "name": name,
                "layer": type(module).__name__,
                "details": module.extra_repr(),
                "output_shape": tuple(output.shape[1:]),
                "params": sum(p.numel() for p in module.parameters(recurse=False)),
            })
        return hook

    leaves = [(name, m) for name, m in model.named_modules() if name and not list(m.children())]
    handles = [m.register_forward_hook(record(name)) for name, m in leaves]
    try:
        with eval_mode(model):
            mu, _logvar = model.encode(torch.zeros(1, *model.config.image_shape, device=model_device(model)))
            model.decode_logits(mu)
    finally:
        for handle in handles:
            handle.remove()
    return rows
