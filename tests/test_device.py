"""Where a run trains and in what precision (vae/device.py)."""

import torch

from vae.config import TrainConfig
from vae.device import autocast_dtype, precision_label


def test_auto_precision_is_bf16_only_where_the_cpu_multiplies_bf16_natively(monkeypatch):
    cpu = torch.device("cpu")
    assert autocast_dtype("fp32", cpu) is None and autocast_dtype("bf16", cpu) is torch.bfloat16
    for avx512_bf16, amx, expected in [(False, False, None), (True, False, torch.bfloat16),
                                       (False, True, torch.bfloat16)]:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda avx512_bf16=avx512_bf16: avx512_bf16)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda amx=amx: amx)
        assert autocast_dtype("auto", cpu) is expected
        assert precision_label("auto", cpu) == ("fp32" if expected is None else "bf16 autocast")
    assert TrainConfig.tutorial().precision == "fp32"  # the article's script, as written
