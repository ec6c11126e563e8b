"""Where a model runs and in what precision: one choice for training, evaluation, the app and the bench."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

PRECISIONS = ("auto", "bf16", "fp32")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` is CUDA when available, else the CPU. Asking for CUDA where there is none is a
    ValueError that says so (torch's own error names a driver download page)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but this machine has no usable CUDA GPU; use auto or cpu")
    return torch.device(name)


def model_device(model: torch.nn.Module) -> torch.device:
    """The device ``model``'s weights are on."""
    return next(model.parameters()).device


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bf16 natively: a CUDA GPU that supports it, or a CPU with
    AVX-512 BF16 or AMX. Elsewhere bf16 is emulated, and much slower than fp32 (bench/RESULTS.md)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype of the training forward pass under autocast, or None for plain fp32.

    ``auto`` is bf16 where the hardware multiplies it natively (``native_bf16``), else fp32: bf16
    trains the default model faster to the same loss there, and is far slower where it is emulated
    (bench/RESULTS.md). Weights, optimizer state and the loss stay fp32. The per-epoch validation
    and test curves are taken in this dtype too (faster, within 0.01 nat); the kept model's metrics
    are taken again in fp32 when the run ends."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if native_bf16(device) else None


def precision_label(precision: str, device: torch.device) -> str:
    """How the training forward pass runs, for people: "bf16 autocast" or "fp32"."""
    return "bf16 autocast" if autocast_dtype(precision, device) else "fp32"


@functools.lru_cache(maxsize=4)  # read once per device, not at every epoch's checkpoint
def hardware_label(device: torch.device) -> str:
    """What a run trained on, for its model card: the GPU's name, or the CPU's with its family and
    model numbers and whether it multiplies bf16 natively (timings depend on all three)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    info = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = info.get("model name") or "CPU"
    if "cpu family" in info:
        name += f" (family {info['cpu family']}, model {info.get('model', '?')})"
    return name + (" with native bf16" if native_bf16(device) else ", no native bf16")


def trained_on(device_name: str, precision: str) -> dict:
    """The device, hardware and precision a run trains with, as its checkpoint stores them."""
    device = resolve_device(device_name)
    return {"device": device.type, "hardware": hardware_label(device),
            "precision": precision_label(precision, device), "torch": str(torch.__version__)}
