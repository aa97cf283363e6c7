"""The residual discriminator (HISTOGAN_NOTES section 4; StyleGAN2's "resnet" D).

    images [B, 3, R, R] in [-1, 1]
      -> DiscriminatorBlock x n_blocks (3 -> d_capacity, then doubling, capped), each halving the side
      -> [B, C, 2, 2] -> minibatch stddev (optional, +mbstd_channels maps) -> flatten -> EqualLinear -> [B]

Each block: a 1x1 convolution on the residual path (no bias) plus two 3x3 convolutions
with LeakyReLU on the main path; the sum is scaled by 1/sqrt(2) so that adding two
roughly independent unit-variance signals keeps unit variance; then a 2x2 average
pool halves the side. The reference code downsamples with a learned stride-2 3x3
convolution instead; the average pool is cheaper and a low-pass filter (StyleGAN2 blurs
before striding for the same reason).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .config import HistoGANConfig
from .layers import EqualConv2d, EqualLinear, downsample2x

__all__ = ["DiscriminatorBlock", "MinibatchStdDev", "Discriminator"]


class DiscriminatorBlock(nn.Module):
    """x [B, C_in, r, r] -> [B, C_out, r/2, r/2]: (skip_1x1(x) + conv3x3(lrelu(conv3x3(x)))) / sqrt(2), pooled."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, activation="lrelu")
        self.conv2 = EqualConv2d(out_channels, out_channels, 3, activation="lrelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = (self.skip(x) + self.conv2(self.conv1(x))) * (1 / math.sqrt(2))
        return downsample2x(y)


class MinibatchStdDev(nn.Module):
    """Append the standard deviation across groups of samples as extra feature maps (ProGAN).

    x [B, C, H, W] -> [B, C + channels, H, W]. Samples are split into groups of
    ``group`` (or the largest divisor of B not above it, so any batch size works); for each
    group the std over the group of every feature, averaged over features (split into
    ``channels`` sets) and positions, becomes a constant map. A generator that makes the
    same image for every z gives a std of 0, which the discriminator can see.
    """

    def __init__(self, group: int, channels: int = 1):
        super().__init__()
        self.group, self.channels = group, channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = min(self.group, b)
        while b % g:
            g -= 1
        f = self.channels
        if c % f:
            raise ValueError(f"mbstd_channels: {f} must divide the feature channels ({c})")
        y = x.reshape(g, -1, f, c // f, h, w)                    # [G, n, F, c, H, W], sample = i * n + j
        y = (y - y.mean(dim=0)).square().mean(dim=0)             # variance over the group
        y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))                # [n, F]
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)            # [B, F, H, W]
        return torch.cat([x, y], dim=1)


class Discriminator(nn.Module):
    """``Discriminator(config)(images)`` -> logits [B] (real high, fake low).

    images: [B, 3, R, R] in [-1, 1], R = config.resolution.
    """

    def __init__(self, config: HistoGANConfig):
        super().__init__()
        if not isinstance(config, HistoGANConfig):
            raise ValueError(f"config: expected a HistoGANConfig, got {type(config).__name__}")
        self.config = config
        chs = config.d_channels
        in_chs = (3,) + chs[:-1]
        self.blocks = nn.ModuleList([DiscriminatorBlock(a, b) for a, b in zip(in_chs, chs)])
        self.mbstd = MinibatchStdDev(config.mbstd_group, config.mbstd_channels) if config.mbstd_group else None
        extra = config.mbstd_channels if config.mbstd_group else 0
        self.final_side = config.resolution // 2 ** config.n_blocks       # = 2
        self.out = EqualLinear((chs[-1] + extra) * self.final_side ** 2, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        r = self.config.resolution
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, r, r):
            raise ValueError(f"images: expected [B, 3, {r}, {r}] in [-1, 1] (config.resolution = {r}), "
                             f"got {tuple(images.shape)}")
        x = images
        for block in self.blocks:
            x = block(x)
        if self.mbstd is not None:
            x = self.mbstd(x)
        return self.out(x.flatten(1)).squeeze(1)
