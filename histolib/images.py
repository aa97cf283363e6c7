"""Small helpers every layer shares: the range convention, device, seed and quick mode.

The range convention (used everywhere in histolib):

* networks see and produce images in **[-1, 1]** (``signed``);
* the colour histogram takes images in **[0, 1]** (``unit``) and clamps to it.

``to_unit`` and ``to_signed`` are the only two places that convert.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["to_unit", "to_signed", "pick_device", "quick_mode", "seed_everything"]


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """Map network images in [-1, 1] to [0, 1] (clamped): ``(x + 1) / 2``.

    images: [..., 3, H, W] in [-1, 1]. Returns the same shape in [0, 1].
    """
    return ((images + 1) * 0.5).clamp(0, 1)


def to_signed(images: torch.Tensor) -> torch.Tensor:
    """Map images in [0, 1] to the networks' range [-1, 1]: ``2 x - 1``.

    images: [..., 3, H, W] in [0, 1]. Returns the same shape in [-1, 1].
    """
    return images * 2 - 1


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to use: ``device`` if given, else CUDA when present, else the CPU.

    Nothing in histolib requires CUDA; this is the one place that looks for it.
    """
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def quick_mode() -> bool:
    """True when ``HISTOLIB_QUICK=1``: notebooks and tests use small sizes and few steps."""
    return os.environ.get("HISTOLIB_QUICK", "0").strip().lower() not in ("", "0", "false", "no")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); returns a ``torch.Generator`` seeded too."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    g = torch.Generator()
    g.manual_seed(seed)
    return g
