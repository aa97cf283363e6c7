"""HistoGANConfig: every size of the generator and the discriminator in one frozen dataclass.

Two presets:

* ``HistoGANConfig.paper()`` -- the HistoGAN reference code at 256 px and network
  capacity 16: synthesis widths 2048, 1024, 512, 256, 128, 64, 32 (no cap), a 64-channel
  4x4 constant (4 x capacity), 512-d latents, an 8-layer mapping network, an 8-layer
  histogram projection 12288 -> 1024 -> 512 -> ... -> 512, the histogram driving the
  last 2 blocks. About 83 M synthesis + 2 M mapping + 14.7 M histogram-projection
  parameters.
* ``HistoGANConfig.toy()`` -- a 64 px model sized so that one training iteration
  (a D step and a G step) at batch 8 takes about 0.3 s on one CPU core; 32 bins;
  see ``toy`` for the measured numbers and the choices made.

Widths follow the reference code's rule: synthesis block ``i`` (0 = the 4x4 block) has
``capacity * 2 ** (n_blocks - i)`` channels, capped at ``max_channels``; discriminator
block ``i`` (0 = the full-resolution block) has ``d_capacity * 2 ** i``, capped at
``d_max_channels``.

Overrides go through ``dataclasses.replace`` and are validated again:
``HistoGANConfig.toy(resolution=32)``. A bad value raises ``ValueError`` naming the field.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["HistoGANConfig"]


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class HistoGANConfig:
    """Sizes of a HistoGAN (generator + discriminator). Defaults are the paper preset.

    Generator
        resolution       output side in pixels; a power of two in 8..1024.
        z_dim, w_dim     latent size (z ~ N(0, I)) and intermediate latent / style size.
        mapping_layers   depth of the mapping network z -> w (fully connected, 512 wide at paper size).
        mapping_lr_mult  learning-rate multiplier of the mapping network (StyleGAN2: 0.01).
        capacity         width unit: synthesis block i has capacity * 2**(n_blocks - i) channels.
        max_channels     cap on the synthesis widths (the reference code has none: 2048 at paper size).
        const_channels   channels of the learned 4x4 constant; None = 4 * capacity (reference code).
        n_hist_blocks    how many of the last synthesis blocks take their style from the histogram.
        hist_bins        the histogram is [3, hist_bins, hist_bins].
        hist_sigma       kernel width of the soft histogram (the trainer passes it to the histogram).
        hist_layers      depth of the histogram projection (fully connected layers).
        hist_hidden      width of its first hidden layer; the later ones are w_dim wide.
        hist_lr_mult     learning-rate multiplier of the histogram projection. 1: the reference
                         code trains it at the generator's rate (plain nn.Linear layers); at 0.01
                         (the mapping network's multiplier) colour control barely moved in 1000
                         toy steps (control ratio 0.98 against 0.92 at 1).
        w_avg_beta       decay of the tracked average w used for truncation.
    Discriminator
        d_capacity       channels of the first residual block; each later block doubles them.
        d_max_channels   cap on the discriminator widths.
        mbstd_group      minibatch-stddev group size (0 = off).
        mbstd_channels   number of stddev feature maps appended when mbstd_group > 0.
    """

    resolution: int = 256
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_lr_mult: float = 0.01
    capacity: int = 16
    max_channels: int = 2048
    const_channels: int | None = None
    n_hist_blocks: int = 2
    hist_bins: int = 64
    hist_sigma: float = 0.02
    hist_layers: int = 8
    hist_hidden: int = 1024
    hist_lr_mult: float = 1.0
    w_avg_beta: float = 0.995
    d_capacity: int = 16
    d_max_channels: int = 2048
    mbstd_group: int = 4
    mbstd_channels: int = 1

    # ------------------------------------------------------------------ validation
    def __post_init__(self):
        r = self.resolution
        if not _is_int(r) or r < 8 or r > 1024 or (r & (r - 1)) != 0:
            raise ValueError(f"resolution: expected a power of two in 8..1024, got {r!r}")
        positive_ints = ["z_dim", "w_dim", "mapping_layers", "capacity", "max_channels",
                         "hist_bins", "hist_layers", "hist_hidden", "d_capacity",
                         "d_max_channels", "mbstd_channels"]
        for name in positive_ints:
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        if self.const_channels is not None and (not _is_int(self.const_channels) or self.const_channels < 1):
            raise ValueError(f"const_channels: expected a positive integer or None, got {self.const_channels!r}")
        if self.hist_bins < 2:
            raise ValueError(f"hist_bins: expected at least 2 bins, got {self.hist_bins!r}")
        for name in ("mapping_lr_mult", "hist_lr_mult", "hist_sigma"):
            v = getattr(self, name)
            if not _is_real(v) or v <= 0:
                raise ValueError(f"{name}: expected a positive number, got {v!r}")
        if not _is_real(self.w_avg_beta) or not 0 <= self.w_avg_beta < 1:
            raise ValueError(f"w_avg_beta: expected a number in [0, 1), got {self.w_avg_beta!r}")
        nb = self.n_blocks
        if not _is_int(self.n_hist_blocks) or not 1 <= self.n_hist_blocks < nb:
            raise ValueError(
                f"n_hist_blocks: expected 1..{nb - 1} for resolution {r} ({nb} blocks; at least one "
                f"block must stay driven by w), got {self.n_hist_blocks!r}")
        if not _is_int(self.mbstd_group) or self.mbstd_group < 0 or self.mbstd_group == 1:
            raise ValueError(f"mbstd_group: expected 0 (off) or a group size >= 2, got {self.mbstd_group!r}")

    # ------------------------------------------------------------------ derived sizes
    @property
    def n_blocks(self) -> int:
        """Number of synthesis (and discriminator) blocks: log2(resolution) - 1."""
        return int(math.log2(self.resolution)) - 1

    @property
    def n_w_blocks(self) -> int:
        """Synthesis blocks driven by w (the first ones); the rest are driven by the histogram."""
        return self.n_blocks - self.n_hist_blocks

    @property
    def block_resolutions(self) -> tuple[int, ...]:
        """Side of each synthesis block's output: 4, 8, ..., resolution."""
        return tuple(4 * 2 ** i for i in range(self.n_blocks))

    @property
    def g_channels(self) -> tuple[int, ...]:
        """Output channels of each synthesis block (block 0 works at 4x4)."""
        return tuple(min(self.capacity * 2 ** (self.n_blocks - i), self.max_channels)
                     for i in range(self.n_blocks))

    @property
    def g_const_channels(self) -> int:
        """Channels of the learned 4x4 constant (4 x capacity unless const_channels is set)."""
        return self.const_channels if self.const_channels is not None else min(4 * self.capacity, self.max_channels)

    @property
    def d_channels(self) -> tuple[int, ...]:
        """Output channels of each discriminator block (block 0 sees the full-resolution image)."""
        return tuple(min(self.d_capacity * 2 ** i, self.d_max_channels) for i in range(self.n_blocks))

    @property
    def hist_dim(self) -> int:
        """Length of a flattened histogram: 3 * hist_bins ** 2."""
        return 3 * self.hist_bins ** 2

    # ------------------------------------------------------------------ presets
    @classmethod
    def paper(cls, **overrides) -> "HistoGANConfig":
        """The HistoGAN reference code's model: 256 px, capacity 16, 64 bins, histogram in the last 2 blocks."""
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def toy(cls, **overrides) -> "HistoGANConfig":
        """A 64 px model a 2-core CPU trains at a useful speed (works at resolution=32 too).

        Measured on the project's shared 2-core CPU (``benchmarks/bench_modconv.py``
        prints it): one training iteration at batch 8 (D step on 8 real + 8 fake
        images, G step on 8 fakes, Adam updates) takes about 0.3 s with one torch
        thread (0.1 s at 32 px), i.e. ~27 images/s. (With two threads on a machine that
        other processes keep busy, the OpenMP threads wait on each other and the same
        iteration took 2-3 s: use ``torch.set_num_threads(1)`` there.) Choices:

        * generator widths 128, 128, 64, 32, 16 (capacity 8, capped at 128), a 32-channel
          constant; discriminator widths 16, 32, 64, 128, 128. Capacity 4 (8 channels at
          64 px) or d_capacity 8 would each save only ~20 %.
        * 128-d z and w, a 4-layer mapping network, a 4-layer histogram projection
          3072 -> 256 -> 128 -> 128 -> 128.
        * 32 histogram bins: at 64 bins the projection's first layer (12288 x 256 weights,
          forward, backward and Adam update) added ~20 % to an iteration.
        * sigma 0.1, about half a bin (the paper's 0.02 is a fifth of its 64-bin spacing):
          a smoother histogram gives the histogram loss smoother gradients, and colour
          control is learned much sooner. Measured at 32 px, 900 steps of batch 8: control
          ratio (``histolib.metrics``; 1 = no control) 0.75 with sigma 0.1 against 0.93 with
          0.04 (both with histogram-loss weight 10); fitting one face's pixels to another's
          histogram by gradient descent reaches Hellinger 0.19 with sigma 0.05-0.1 and
          plateaus at 0.42 with 0.02.
        """
        base = cls(resolution=64, z_dim=128, w_dim=128, mapping_layers=4, capacity=8,
                   max_channels=128, hist_bins=32, hist_sigma=0.1, hist_layers=4, hist_hidden=256,
                   d_capacity=16, d_max_channels=128, mbstd_group=4)
        return dataclasses.replace(base, **overrides)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-able dict of every field (what checkpoints store)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "HistoGANConfig":
        """Rebuild a config from ``to_dict()`` output; unknown keys raise ValueError."""
        if not isinstance(d, dict):
            raise ValueError(f"d: expected a dict from HistoGANConfig.to_dict(), got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"d: unknown HistoGANConfig fields {unknown}; known fields: {sorted(known)}")
        return cls(**d)
