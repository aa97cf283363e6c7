"""Drawing helpers for the notebooks (matplotlib is imported here, lazily, and nowhere below).

Every function takes tensors in the documented range and returns the matplotlib
``Figure`` it drew, so a notebook cell can end with ``plt.show()`` and a script can
``fig.savefig(...)``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

__all__ = ["image_grid", "show_images"]


def image_grid(images: torch.Tensor, nrow: int | None = None, value_range=(-1.0, 1.0), padding: int = 2):
    """Tile images into one [3, H', W'] tensor in [0, 1].

    images: [B, 3, H, W] with values in ``value_range`` ((-1, 1) for network images,
    (0, 1) for histogram-space images). nrow: images per row (default: about square).
    """
    from torchvision.utils import make_grid

    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images: expected [B, 3, H, W], got {tuple(images.shape)}")
    lo, hi = value_range
    x = ((images.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    nrow = nrow or max(1, math.ceil(math.sqrt(len(x))))
    return make_grid(x, nrow=nrow, padding=padding, pad_value=1.0)


def show_images(images: torch.Tensor, nrow: int | None = None, value_range=(-1.0, 1.0),
                title: str | None = None, titles: Sequence[str] | None = None, scale: float = 1.0):
    """Show a batch of images, as one grid or (with ``titles``) one titled panel each.

    images: [B, 3, H, W] (or [3, H, W]) in ``value_range``: (-1, 1) for what the
    networks see and make, (0, 1) for what the histogram sees.
    """
    import matplotlib.pyplot as plt

    if images.ndim == 3:
        images = images[None]
    if titles is not None:
        if len(titles) != len(images):
            raise ValueError(f"titles: got {len(titles)} titles for {len(images)} images")
        n = len(images)
        fig, axes = plt.subplots(1, n, figsize=(2.4 * n * scale, 2.6 * scale), squeeze=False)
        for ax, img, t in zip(axes[0], images, titles):
            ax.imshow(image_grid(img[None], 1, value_range, padding=0).permute(1, 2, 0).numpy())
            ax.set_title(t, fontsize=9)
            ax.axis("off")
    else:
        grid = image_grid(images, nrow, value_range)
        h, w = grid.shape[1:]
        fig, ax = plt.subplots(figsize=(scale * 8 * w / max(h, w), scale * 8 * h / max(h, w)))
        ax.imshow(grid.permute(1, 2, 0).numpy())
        ax.axis("off")
        if title:
            ax.set_title(title)
    fig.tight_layout()
    return fig
