"""The HistoGAN generator: StyleGAN2 whose last blocks take their style from a colour histogram.

    z [B, z_dim] --MappingNetwork--> w [B, w_dim] ----------------> style of blocks 0 .. n_w - 1
    hist [B, 3, bins, bins] --HistogramProjection--> h [B, w_dim] -> style of the last n_hist_blocks
    learned 4x4 constant --SynthesisBlock x n_blocks--> images [B, 3, R, R]

Each synthesis block: 2x upsample (not block 0), two 3x3 modulated convolutions, each
followed by noise, bias and LeakyReLU; a 1x1 toRGB (modulated, not demodulated) whose
output is added to the upsampled RGB of the blocks before (the "skip" generator of
StyleGAN2). A histogram-driven block uses h for both convolutions AND its toRGB, so
the histogram decides the colours that reach the image last, while w (through the
earlier blocks) decides the content. Because the earlier blocks never see h, the
activations entering the first histogram-driven block do not depend on the histogram.

Departures from the reference code, written down:
* the histogram projection first rescales the flattened histogram to unit root mean
  square. A histogram sums to 1 over 3 * 64 * 64 entries, so its raw entries are about
  1e-4 and, through an equalized-lr layer, would give an embedding ~100x smaller than
  its bias: at initialisation the colour target would barely reach the image. The
  rescaled input gives unit-variance pre-activations, like the pixel norm on z.
* LeakyReLU outputs are multiplied by sqrt(2) and layers use equalized learning rate
  (StyleGAN2; the reference code uses plain nn.Linear / Kaiming init).
* the mapping network normalises z (pixel norm) and tracks ``w_avg`` for truncation.

Ranges: images come out unsquashed, about [-1, 1] (the network's range convention);
histograms go in as non-negative [B, 3, bins, bins] tensors that sum to 1 per sample.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .config import HistoGANConfig
from .layers import EqualLinear, ModulatedConv2d, NoiseInjection, lrelu_gain, upsample2x, MODCONV_IMPLS

__all__ = ["MappingNetwork", "HistogramProjection", "SynthesisBlock", "SynthesisNetwork", "HistoGAN",
           "NOISE_MODES"]

NOISE_MODES = ("random", "const", "none")


def _normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row of x [B, D] to unit root mean square (StyleGAN's pixel norm on z)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


class MappingNetwork(nn.Module):
    """z [B, z_dim] -> w [B, w_dim]: pixel norm, then ``layers`` EqualLinear + LeakyReLU.

    All layers use the learning-rate multiplier ``lr_mult`` (0.01 in StyleGAN2), which
    slows the mapping network down relative to the synthesis network.
    ``w_avg`` [w_dim] (a buffer) tracks the average w for truncation: it moves towards
    the batch mean with decay ``w_avg_beta`` whenever forward is called with
    ``update_w_avg=True`` (the trainer does that on generator steps).
    """

    def __init__(self, z_dim: int, w_dim: int, layers: int, lr_mult: float = 0.01, w_avg_beta: float = 0.995):
        super().__init__()
        self.z_dim, self.w_dim, self.w_avg_beta = z_dim, w_dim, w_avg_beta
        dims = [z_dim] + [w_dim] * layers
        self.net = nn.Sequential(*[EqualLinear(a, b, lr_mult=lr_mult, activation="lrelu")
                                   for a, b in zip(dims[:-1], dims[1:])])
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, update_w_avg: bool = False) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z: expected [B, {self.z_dim}], got {tuple(z.shape)}")
        w = self.net(_normalize_2nd_moment(z))
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        return w

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        """Pull w towards the tracked average: w_avg + psi (w - w_avg). psi = 1 is the identity."""
        if psi == 1:
            return w
        return self.w_avg.to(w.dtype).lerp(w, psi)


class HistogramProjection(nn.Module):
    """hist [B, 3, bins, bins] -> h [B, w_dim], the style of the histogram-driven blocks.

    Flatten (3 bins^2 values), rescale to unit RMS, then ``layers`` EqualLinear + LeakyReLU:
    3 bins^2 -> hidden -> w_dim -> ... -> w_dim (paper: 12288 -> 1024 -> 512 x 7).
    """

    def __init__(self, bins: int, w_dim: int, layers: int, hidden: int, lr_mult: float = 0.01):
        super().__init__()
        self.bins = bins
        dims = [3 * bins * bins] + ([hidden] + [w_dim] * (layers - 1) if layers > 1 else [w_dim])
        self.net = nn.Sequential(*[EqualLinear(a, b, lr_mult=lr_mult, activation="lrelu")
                                   for a, b in zip(dims[:-1], dims[1:])])

    def forward(self, hist: torch.Tensor) -> torch.Tensor:
        if hist.ndim != 4 or tuple(hist.shape[1:]) != (3, self.bins, self.bins):
            raise ValueError(f"hist: expected [B, 3, {self.bins}, {self.bins}] (config.hist_bins = {self.bins}), "
                             f"got {tuple(hist.shape)}")
        return self.net(_normalize_2nd_moment(hist.flatten(1)))


class SynthesisBlock(nn.Module):
    """One resolution step: (upsample) -> modconv 3x3 -> noise, bias, lrelu -> modconv 3x3 -> ... -> toRGB.

    forward(x [B, C_in, r/2, r/2] (or [B, C_in, 4, 4] for block 0), rgb [B, 3, r/2, r/2] or None,
    w [B, w_dim], noise_mode) -> (x [B, C_out, r, r], rgb [B, 3, r, r]).
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, upsample: bool,
                 noise_seed: int = 0):
        super().__init__()
        self.resolution, self.upsample = resolution, upsample
        self.conv1 = ModulatedConv2d(in_channels, out_channels, 3, w_dim)
        self.noise1 = NoiseInjection(out_channels)
        self.bias1 = nn.Parameter(torch.zeros(out_channels))
        self.conv2 = ModulatedConv2d(out_channels, out_channels, 3, w_dim)
        self.noise2 = NoiseInjection(out_channels)
        self.bias2 = nn.Parameter(torch.zeros(out_channels))
        self.to_rgb = ModulatedConv2d(out_channels, 3, 1, w_dim, demodulate=False)
        self.rgb_bias = nn.Parameter(torch.zeros(3))
        # fixed noise for noise_mode="const": drawn from its own generator, so building a
        # model does not move the global RNG and every model has the same constant noise
        g = torch.Generator().manual_seed(noise_seed)
        self.register_buffer("noise_const1", torch.randn(1, 1, resolution, resolution, generator=g), persistent=False)
        self.register_buffer("noise_const2", torch.randn(1, 1, resolution, resolution, generator=g), persistent=False)

    def _noise(self, x: torch.Tensor, mode: str, const: torch.Tensor):
        if mode == "random":
            return torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        if mode == "const":
            return const.to(x.dtype)
        return None

    def forward(self, x, rgb, w, noise_mode: str = "random", impl: str | None = None):
        if self.upsample:
            x = upsample2x(x)
        x = self.conv1(x, w, impl)
        x = lrelu_gain(self.noise1(x, self._noise(x, noise_mode, self.noise_const1)) + self.bias1[None, :, None, None])
        x = self.conv2(x, w, impl)
        x = lrelu_gain(self.noise2(x, self._noise(x, noise_mode, self.noise_const2)) + self.bias2[None, :, None, None])
        y = self.to_rgb(x, w, impl) + self.rgb_bias[None, :, None, None]
        rgb = y if rgb is None else upsample2x(rgb) + y
        return x, rgb


class SynthesisNetwork(nn.Module):
    """The learned 4x4 constant and the blocks; one style vector per block.

    forward(styles: list of n_blocks tensors [B, w_dim], noise_mode) -> images [B, 3, R, R].
    """

    def __init__(self, config: HistoGANConfig):
        super().__init__()
        c = config
        self.const = nn.Parameter(torch.randn(c.g_const_channels, 4, 4))
        in_chs = (c.g_const_channels,) + c.g_channels[:-1]
        self.blocks = nn.ModuleList([
            SynthesisBlock(cin, cout, c.w_dim, res, upsample=i > 0, noise_seed=1000 + i)
            for i, (cin, cout, res) in enumerate(zip(in_chs, c.g_channels, c.block_resolutions))])

    def forward(self, styles, noise_mode: str = "random", impl: str | None = None) -> torch.Tensor:
        if len(styles) != len(self.blocks):
            raise ValueError(f"styles: expected {len(self.blocks)} style tensors (one per block), got {len(styles)}")
        x = self.const[None].expand(styles[0].shape[0], -1, -1, -1)
        rgb = None
        for block, s in zip(self.blocks, styles):
            x, rgb = block(x, rgb, s, noise_mode, impl)
        return rgb


class HistoGAN(nn.Module):
    """The generator: ``HistoGAN(config)(z, hist)`` -> images [B, 3, R, R], about [-1, 1].

    Submodules: ``mapping`` (z -> w, with ``w_avg``), ``hist_projection`` (hist -> h),
    ``synthesis`` (constant + blocks). Blocks 0 .. n_w_blocks - 1 use w; the last
    ``config.n_hist_blocks`` blocks (both convolutions and toRGB) use h.
    """

    def __init__(self, config: HistoGANConfig, impl: str = "auto"):
        super().__init__()
        if not isinstance(config, HistoGANConfig):
            raise ValueError(f"config: expected a HistoGANConfig, got {type(config).__name__}")
        if impl not in MODCONV_IMPLS:
            raise ValueError(f"impl: expected one of {MODCONV_IMPLS}, got {impl!r}")
        self.config, self.impl = config, impl
        c = config
        self.mapping = MappingNetwork(c.z_dim, c.w_dim, c.mapping_layers, c.mapping_lr_mult, c.w_avg_beta)
        self.hist_projection = HistogramProjection(c.hist_bins, c.w_dim, c.hist_layers, c.hist_hidden, c.hist_lr_mult)
        self.synthesis = SynthesisNetwork(c)

    @property
    def num_ws(self) -> int:
        """Number of per-block styles (= n_blocks); the first ``n_w_blocks`` come from w."""
        return self.config.n_blocks

    @property
    def n_w_blocks(self) -> int:
        return self.config.n_w_blocks

    def forward(self, z: torch.Tensor | None, hist: torch.Tensor, *, w: torch.Tensor | None = None,
                truncation_psi: float = 1.0, mix_z: torch.Tensor | None = None, mix_layer: int | None = None,
                noise_mode: str = "random", return_w: bool = False, update_w_avg: bool = False,
                impl: str | None = None):
        """Generate images.

        z:      [B, z_dim] latents ~ N(0, I); ignored (may be None) when ``w`` is given.
        hist:   [B, 3, bins, bins] target colour histograms (non-negative, sum 1 per sample).
        w:      [B, w_dim] intermediate latents to use instead of mapping z.
        truncation_psi: w <- w_avg + psi (w - w_avg) (also applied to the mixing w); 1 = off.
        mix_z, mix_layer: style mixing: blocks mix_layer .. n_w_blocks - 1 use mapping(mix_z).
        noise_mode: "random" (fresh N(0, 1) noise), "const" (fixed per-layer noise) or "none".
        return_w: also return w [B, w_dim], the tensor the w-driven blocks used (after
                  truncation), for path-length regularisation: d(images)/d(w).
        update_w_avg: move ``mapping.w_avg`` towards this batch's mean w (training only).
        impl:   modulated-convolution implementation (default: the model's, "auto").
        Returns images [B, 3, R, R] (about [-1, 1]), or (images, w) with return_w=True.
        """
        c = self.config
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode: expected one of {NOISE_MODES}, got {noise_mode!r}")
        if w is None:
            if z is None:
                raise ValueError("z: give latents z [B, z_dim] or pass w=... instead")
            w = self.mapping(z, update_w_avg=update_w_avg)
        elif w.ndim != 2 or w.shape[1] != c.w_dim:
            raise ValueError(f"w: expected [B, {c.w_dim}], got {tuple(w.shape)}")
        if hist.ndim != 4 or hist.shape[0] != w.shape[0]:
            raise ValueError(f"hist: expected [B, 3, bins, bins] with B = {w.shape[0]}, got {tuple(hist.shape)}")
        w = self.mapping.truncate(w, truncation_psi)
        w_styles = [w] * c.n_w_blocks
        if mix_z is not None:
            if mix_layer is None or not 0 <= mix_layer <= c.n_w_blocks:
                raise ValueError(f"mix_layer: expected a block index in 0..{c.n_w_blocks} with mix_z, got {mix_layer!r}")
            w_mix = self.mapping.truncate(self.mapping(mix_z), truncation_psi)
            w_styles = [w] * mix_layer + [w_mix] * (c.n_w_blocks - mix_layer)
        elif mix_layer is not None:
            raise ValueError("mix_layer: given without mix_z; pass mix_z=... too, or drop mix_layer")
        h = self.hist_projection(hist)
        images = self.synthesis(w_styles + [h] * c.n_hist_blocks, noise_mode=noise_mode, impl=impl or self.impl)
        return (images, w) if return_w else images
