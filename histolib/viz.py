"""Drawing helpers for the notebooks (matplotlib is imported here, lazily, and nowhere below).

Every function takes tensors in the documented range and returns the matplotlib
``Figure`` it drew, so a notebook cell can end with ``plt.show()`` and a script can
``fig.savefig(...)``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

__all__ = ["image_grid", "show_images", "show_histogram", "show_interpolation_strip", "plot_training_log"]


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


# ----------------------------------------------------------------------------------------
# RGB-uv histograms (histolib.histogram): three u-v planes, log colour scale

_PLANE_LABELS = (("R", "log(R/G)", "log(R/B)"), ("G", "log(G/R)", "log(G/B)"), ("B", "log(B/R)", "log(B/G)"))


def _log_norm(hists: torch.Tensor, floor: float = 1e-4):
    """One logarithmic colour scale for a set of histograms: from floor * max to max."""
    from matplotlib.colors import LogNorm

    vmax = max(float(hists.max()), 1e-12)
    return LogNorm(vmin=vmax * floor, vmax=vmax, clip=True)


def _draw_plane(ax, plane: torch.Tensor, norm, boundary, channel: int, labels: bool = True, cmap: str = "magma"):
    """plane: [bins, bins], rows = u bins, columns = v bins. Drawn with u across, v up."""
    lo, hi = boundary
    img = ax.imshow(plane.detach().float().cpu().T.numpy(), origin="lower", extent=(lo, hi, lo, hi),
                    norm=norm, cmap=cmap, interpolation="nearest")
    name, u, v = _PLANE_LABELS[channel]
    if labels:
        ax.set_title(f"{name} plane", fontsize=9)
        ax.set_xlabel(f"u = {u}", fontsize=8)
        ax.set_ylabel(f"v = {v}", fontsize=8)
        ax.tick_params(labelsize=7)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    return img


def show_histogram(hist: torch.Tensor, image: torch.Tensor | None = None, title: str | None = None,
                   boundary=(-3.0, 3.0), image_range=(0.0, 1.0), floor: float = 1e-4, scale: float = 1.0):
    """Draw RGB-uv histograms as their three u-v planes (log colour scale), beside the image.

    hist: [3, bins, bins] or [B, 3, bins, bins] (one row per histogram), non-negative.
    image: optional [3, H, W] or [B, 3, H, W] in ``image_range`` ((0, 1), what the
        histogram sees; (-1, 1) for network images), drawn left of its histogram.
    boundary: the histogram's (low, high) bin centres, for the axis labels.
    floor: the colour scale spans floor * max .. max (one scale for all planes shown,
        so they can be compared); emptier bins are drawn black.
    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    if hist.ndim == 3:
        hist = hist[None]
    if hist.ndim != 4 or hist.shape[1] != 3:
        raise ValueError(f"hist: expected [3, bins, bins] or [B, 3, bins, bins], got {tuple(hist.shape)}")
    if image is not None:
        if image.ndim == 3:
            image = image[None]
        if image.ndim != 4 or image.shape[1] != 3 or len(image) != len(hist):
            raise ValueError(f"image: expected [3, H, W] or [B, 3, H, W] with B = {len(hist)}, got {tuple(image.shape)}")
    rows, cols = len(hist), 3 + (image is not None)
    norm = _log_norm(hist, floor)
    fig, axes = plt.subplots(rows, cols, figsize=(2.7 * cols * scale + 0.8, 2.5 * rows * scale + 0.4), squeeze=False,
                             layout="constrained")
    for r in range(rows):
        c0 = 0
        if image is not None:
            ax = axes[r, 0]
            ax.imshow(image_grid(image[r][None], 1, image_range, padding=0).permute(1, 2, 0).numpy())
            ax.axis("off")
            c0 = 1
        for c in range(3):
            mappable = _draw_plane(axes[r, c0 + c], hist[r, c], norm, boundary, c)
    fig.colorbar(mappable, ax=axes[:, c0:].ravel().tolist(), shrink=0.8, label="bin mass (log scale)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def show_interpolation_strip(images: torch.Tensor, hists: torch.Tensor, ts, boundary=(-3.0, 3.0),
                             image_range=(0.0, 1.0), floor: float = 1e-4, scale: float = 1.0,
                             caption: str = "below each image: the R, G, B u-v planes of its histogram (log scale)"):
    """A strip of frames: for each t, the image (top) and its histogram's three planes (below).

    images: [T, 3, H, W] in ``image_range``; hists: [T, 3, bins, bins]; ts: T numbers
    (the column titles); caption: the line under the strip (say whose histograms they are).
    Used for the static picture of the interpolation slider.
    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    if images.ndim != 4 or hists.ndim != 4 or len(images) != len(hists) or len(ts) != len(images):
        raise ValueError(f"images, hists, ts: expected [T, 3, H, W], [T, 3, bins, bins] and T values, got "
                         f"{tuple(images.shape)}, {tuple(hists.shape)} and {len(ts)}")
    n = len(images)
    norm = _log_norm(hists, floor)
    fig = plt.figure(figsize=(2.0 * n * scale, 3.0 * scale))
    grid = fig.add_gridspec(2, 3 * n, height_ratios=[3, 1], hspace=0.08, wspace=0.06)
    for k in range(n):
        ax = fig.add_subplot(grid[0, 3 * k:3 * k + 3])
        ax.imshow(image_grid(images[k][None], 1, image_range, padding=0).permute(1, 2, 0).numpy())
        ax.set_title(f"t = {float(ts[k]):.2f}", fontsize=9)
        ax.axis("off")
        for c in range(3):
            _draw_plane(fig.add_subplot(grid[1, 3 * k + c]), hists[k, c], norm, boundary, c, labels=False)
    fig.text(0.5, 0.02, caption, ha="center", fontsize=8)
    return fig


def plot_training_log(log, keys=None):
    """Plot a training log: the rows of ``histolib.train.read_log`` (or a run folder / log path).

    Panels: the adversarial losses; D(real) and D(fake); the Hellinger distance between the
    targets and the generated images' histograms; the generated pixel range (it should stay
    near [-1, 1]); the regularisers when present. Returns the figure.
    """
    import matplotlib.pyplot as plt

    if not isinstance(log, list):
        from .train import read_log
        log = read_log(log)
    if not log:
        raise ValueError("log: no rows to plot (train for at least log_every steps)")
    step = [r["step"] for r in log]

    def series(key):
        return [(s, r[key]) for s, r in zip(step, log) if key in r]

    panels = keys or [("loss_d", "loss_g"), ("d_real", "d_fake"), ("hellinger",), ("fake_min", "fake_max"),
                      ("r1", "gp", "pl")]
    panels = [tuple(p) for p in panels if any(series(k) for k in p)]
    titles = {("loss_d", "loss_g"): "adversarial losses", ("d_real", "d_fake"): "D outputs (logits)",
              ("hellinger",): "Hellinger(target, generated)", ("fake_min", "fake_max"): "generated pixel range",
              ("r1", "gp", "pl"): "regularisers"}
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 2.8), squeeze=False)
    for ax, keys_ in zip(axes[0], panels):
        for k in keys_:
            pts = series(k)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k, lw=1.2)
        if keys_ == ("fake_min", "fake_max"):
            ax.axhspan(-1, 1, color="0.9", zorder=0)
        ax.set_title(titles.get(keys_, ", ".join(keys_)), fontsize=10)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
