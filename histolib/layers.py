"""The layers StyleGAN2 (and so HistoGAN) is built from.

* Equalized learning rate (Karras et al. 2018): weights are stored N(0, 1) and scaled by
  ``lr_mult / sqrt(fan_in)`` every forward pass, so Adam moves every layer at the same
  relative speed. ``EqualLinear`` and ``EqualConv2d``.
* The modulated convolution (StyleGAN2, Eq. 1-3): a style ``s`` [B, C_in] scales the
  input channels of a shared weight, ``w'_{oik} = s_i w_{oik}``; demodulation rescales
  each output channel to unit expected variance,
  ``w''_{oik} = w'_{oik} / sqrt(sum_{i,k} w'_{oik}^2 + 1e-8)``.
  ``modulated_conv2d`` computes it three ways (all equal up to float rounding):

  - ``"unfold"``: cut the input into patches (``F.unfold``) and multiply each sample's
    patches by that sample's weight matrix (``torch.bmm``). The route of the student
    write-up; easy to read, slow, and the patches take k*k times the input's memory.
  - ``"grouped"``: build the per-sample weights [B, C_out, C_in, k, k] as a new tensor and
    run ONE convolution with the batch folded into the channel groups.
  - ``"scaled"``: never build per-sample weights: scale the input channels by ``s``,
    run the shared-weight convolution, scale the outputs by the demodulation
    coefficients ``d_bo = 1 / sqrt(sum_i s_bi^2 sum_k w_oik^2 + 1e-8)``.
  - ``"auto"``: the faster of grouped / scaled for the device and shape, see
    ``choose_modconv_impl`` (CPU: grouped on large feature maps, scaled on small ones).

  None of them edits a Parameter in place (PyTorch forbids it, and it is the bug that
  pushed the student write-up to fold/unfold).
* ``NoiseInjection`` (a learned per-channel strength times N(0, 1) noise) and the 2x
  upsampling used between synthesis blocks.

Activations: ``"lrelu"`` is LeakyReLU(0.2) multiplied by sqrt(2) (StyleGAN2's gain), so
that a layer keeps the second moment of its input at about 1 and a deep stack of
demodulated convolutions neither shrinks nor grows.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "MODCONV_IMPLS", "DEMOD_EPS", "modulated_conv2d", "choose_modconv_impl", "lrelu_gain",
    "EqualLinear", "EqualConv2d", "ModulatedConv2d", "NoiseInjection", "upsample2x", "Upsample",
    "downsample2x",
]

MODCONV_IMPLS = ("unfold", "grouped", "scaled", "auto")
DEMOD_EPS = 1e-8          # StyleGAN2's demodulation epsilon
LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def lrelu_gain(x: torch.Tensor) -> torch.Tensor:
    """LeakyReLU(0.2) times sqrt(2): keeps the second moment of a N(0, 1) input near 1."""
    return F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN


# ---------------------------------------------------------------------------- modulated convolution
def _check_modconv_args(x, weight, styles, padding, impl):
    if impl not in MODCONV_IMPLS:
        raise ValueError(f"impl: expected one of {MODCONV_IMPLS}, got {impl!r}")
    if x.ndim != 4:
        raise ValueError(f"x: expected [B, C_in, H, W], got shape {tuple(x.shape)}")
    if weight.ndim != 4 or weight.shape[2] != weight.shape[3]:
        raise ValueError(f"weight: expected [C_out, C_in, k, k], got shape {tuple(weight.shape)}")
    b, c_in = x.shape[:2]
    if weight.shape[1] != c_in:
        raise ValueError(f"weight: has {weight.shape[1]} input channels but x has {c_in}")
    if styles.shape != (b, c_in):
        raise ValueError(f"styles: expected [B, C_in] = [{b}, {c_in}], got {tuple(styles.shape)}")
    k = weight.shape[-1]
    if padding is None:
        if k % 2 == 0:
            raise ValueError(f"padding: give it explicitly for an even kernel size ({k})")
        padding = k // 2
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding: expected a non-negative int or None ('same'), got {padding!r}")
    return padding


def _demod_coefficients(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """d[b, o] = 1 / sqrt(sum_{i,k} (s[b, i] w[o, i, k])^2 + eps), computed without per-sample weights.

    weight [C_out, C_in, k, k], styles [B, C_in] -> [B, C_out].
    """
    w2 = weight.square().sum(dim=(2, 3))                   # [C_out, C_in]
    return torch.rsqrt(styles.square() @ w2.t() + DEMOD_EPS)


def _per_sample_weights(weight: torch.Tensor, styles: torch.Tensor, demodulate: bool) -> torch.Tensor:
    """The modulated (and demodulated) weights, one set per sample: [B, C_out, C_in, k, k]."""
    w = weight[None] * styles[:, None, :, None, None]      # modulate: scale input channels
    if demodulate:
        d = torch.rsqrt(w.square().sum(dim=(2, 3, 4)) + DEMOD_EPS)  # [B, C_out]
        w = w * d[:, :, None, None, None]
    return w


def _modconv_unfold(x, weight, styles, demodulate, padding):
    b, c_in, h, w_ = x.shape
    c_out, _, k, _ = weight.shape
    wb = _per_sample_weights(weight, styles, demodulate).reshape(b, c_out, c_in * k * k)
    cols = F.unfold(x, kernel_size=k, padding=padding)     # [B, C_in*k*k, L]
    out = torch.bmm(wb, cols)                              # [B, C_out, L]
    h_out, w_out = h + 2 * padding - k + 1, w_ + 2 * padding - k + 1
    return out.reshape(b, c_out, h_out, w_out)             # = F.fold with a 1x1 kernel


def _modconv_grouped(x, weight, styles, demodulate, padding):
    b, c_in, h, w_ = x.shape
    c_out, _, k, _ = weight.shape
    wb = _per_sample_weights(weight, styles, demodulate).reshape(b * c_out, c_in, k, k)
    out = F.conv2d(x.reshape(1, b * c_in, h, w_), wb, padding=padding, groups=b)
    return out.reshape(b, c_out, out.shape[2], out.shape[3])


def _modconv_scaled(x, weight, styles, demodulate, padding):
    out = F.conv2d(x * styles[:, :, None, None], weight, padding=padding)
    if demodulate:
        out = out * _demod_coefficients(weight, styles)[:, :, None, None]
    return out


_IMPL_FUNCS = {"unfold": _modconv_unfold, "grouped": _modconv_grouped, "scaled": _modconv_scaled}


def choose_modconv_impl(x: torch.Tensor, weight: torch.Tensor) -> str:
    """The rule behind ``impl="auto"``: "scaled" or "grouped" for this device and shape.

    Both do one convolution of the same size; they differ in the extra work around it.
    "grouped" builds, demodulates and differentiates per-sample weights:
    B * C_out * C_in * k^2 numbers, touched about 3 times, plus a fixed cost for setting
    up a grouped call. "scaled" makes elementwise passes over the activations (x * s on
    the way in, out * d on the way out, and their backward): about B * H * W * (C_in + C_out)
    numbers. So "scaled" wins on small, wide layers and "grouped" on large, thin ones.

    * CPU (measured with benchmarks/bench_modconv.py, forward + backward, batch 4 and 8,
      at every layer of the toy and paper presets): pick "grouped" when
      ``1e5 + 3 B C_out C_in k^2  <  B H W (C_in + C_out)``, else "scaled". The constants
      were fitted to those measurements (the 1e5 is the grouped call's fixed cost, in
      units of elementwise operations). Examples: "scaled" is 4.7x faster than
      "grouped" for 128 -> 128 channels at 8 px; "grouped" 0.63x the time of "scaled"
      for 32 -> 32 channels at 256 px and for toRGB layers from 32 px up.
      "unfold" is the slowest at every measured shape.
    * CUDA (not measured in this project, which had no GPU; the rule of NVlabs'
      StyleGAN2-ADA): "grouped" when no gradient is recorded (inference: one fused
      convolution, no extra passes over the activations), "scaled" when training.
      Run the benchmark on your GPU to check it.
    """
    if x.device.type == "cuda":
        grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
        return "scaled" if grad else "grouped"
    b, c_in, h, w = x.shape
    c_out, _, k, _ = weight.shape
    grouped_extra = 1e5 + 3 * b * c_out * c_in * k * k
    scaled_extra = b * h * w * (c_in + c_out)
    return "grouped" if grouped_extra < scaled_extra else "scaled"


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     demodulate: bool = True, padding: int | None = None, impl: str = "auto") -> torch.Tensor:
    """Modulated (and demodulated) 2-D convolution, StyleGAN2 Eq. 1-3.

    x:       [B, C_in, H, W] activations.
    weight:  [C_out, C_in, k, k] shared weight (already scaled by any equalized-lr gain).
    styles:  [B, C_in] per-sample scale of each input channel (centred at 1 in practice).
    demodulate: divide each sample's output channel o by sqrt(sum_{i,k} (s_i w_oik)^2 + 1e-8).
    padding: zero padding on each side; None = k // 2 ("same" for odd k).
    impl:    "unfold" | "grouped" | "scaled" | "auto" (see the module docstring; all agree).
    Returns [B, C_out, H + 2 p - k + 1, W + 2 p - k + 1]. Differentiable in x, weight and styles.
    """
    padding = _check_modconv_args(x, weight, styles, padding, impl)
    if impl == "auto":
        impl = choose_modconv_impl(x, weight)
    return _IMPL_FUNCS[impl](x, weight, styles, demodulate, padding)


# ---------------------------------------------------------------------------- equalized-lr layers
class EqualLinear(nn.Module):
    """Fully connected layer with equalized learning rate: y = act(x W^T * lr_mult / sqrt(in) + b).

    x: [..., in_features] -> [..., out_features]. The stored weight is N(0, 1) / lr_mult;
    the stored bias is bias_init / lr_mult, so the effective bias at init is bias_init.
    activation: None or "lrelu" (LeakyReLU 0.2 times sqrt(2)).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mult: float = 1.0, activation: str | None = None):
        super().__init__()
        if activation not in (None, "lrelu"):
            raise ValueError(f"activation: expected None or 'lrelu', got {activation!r}")
        if lr_mult <= 0:
            raise ValueError(f"lr_mult: expected a positive number, got {lr_mult!r}")
        self.in_features, self.out_features = in_features, out_features
        self.lr_mult = float(lr_mult)
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mult)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mult)) if bias else None
        self.weight_gain = lr_mult / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias * self.lr_mult if self.bias is not None else None
        y = F.linear(x, w, b)
        return lrelu_gain(y) if self.activation == "lrelu" else y

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, bias={self.bias is not None}, "
                f"lr_mult={self.lr_mult}, activation={self.activation}")


class EqualConv2d(nn.Module):
    """2-D convolution with equalized learning rate (weight N(0, 1) scaled by 1/sqrt(C_in k k)).

    x: [B, C_in, H, W] -> [B, C_out, H', W']; padding None = k // 2.
    activation: None or "lrelu" (LeakyReLU 0.2 times sqrt(2)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | None = None, bias: bool = True, activation: str | None = None):
        super().__init__()
        if activation not in (None, "lrelu"):
            raise ValueError(f"activation: expected None or 'lrelu', got {activation!r}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride = stride
        self.padding = kernel_size // 2 if padding is None else padding
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.weight * self.weight_gain, self.bias, stride=self.stride, padding=self.padding)
        return lrelu_gain(y) if self.activation == "lrelu" else y

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, activation={self.activation}")


class ModulatedConv2d(nn.Module):
    """A modulated convolution with its own style affine: style = A(w), centred at 1.

    forward(x [B, C_in, H, W], w [B, w_dim]) -> [B, C_out, H, W] ("same" padding).
    The affine A is an EqualLinear(w_dim, C_in) with bias initialised to 1, so at
    initialisation the styles are 1 + N(0, ~1) and the layer starts as a plain conv.
    demodulate=False is the toRGB layer (1x1, output keeps the style's scale).
    impl: default implementation for this layer ("auto"); can be overridden per call.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int,
                 demodulate: bool = True, impl: str = "auto"):
        super().__init__()
        if impl not in MODCONV_IMPLS:
            raise ValueError(f"impl: expected one of {MODCONV_IMPLS}, got {impl!r}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate, self.impl = demodulate, impl
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, impl: str | None = None) -> torch.Tensor:
        styles = self.affine(w)                                   # [B, C_in], about 1
        return modulated_conv2d(x, self.weight * self.weight_gain, styles, demodulate=self.demodulate,
                                impl=impl or self.impl)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"demodulate={self.demodulate}, impl={self.impl!r}")


# ---------------------------------------------------------------------------- noise and resampling
class NoiseInjection(nn.Module):
    """x + strength[c] * noise, with a learned per-channel strength (initialised to 0).

    x: [B, C, H, W]; noise: [B, 1, H, W] (one N(0, 1) map per sample, shared by channels),
    or None to skip. At initialisation the layer is the identity.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if noise is None:
            return x
        return x + self.strength[None, :, None, None] * noise


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Double height and width by bilinear interpolation (align_corners=False).

    x: [B, C, H, W] -> [B, C, 2H, 2W]. Away from the border this is exactly StyleGAN2's
    FIR upsampling with the [1, 3, 3, 1] / 4 filter (each new pixel is 3/4 of its nearest
    old pixel plus 1/4 of the next one); at the border it repeats the edge instead of
    padding with zeros. The HistoGAN reference code uses the same bilinear upsampling.
    """
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class Upsample(nn.Module):
    """Module form of ``upsample2x``: [B, C, H, W] -> [B, C, 2H, 2W]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample2x(x)


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    """Halve height and width by 2x2 averaging (a box low-pass, then keep every other pixel).

    x: [B, C, H, W] with even H, W -> [B, C, H/2, W/2].
    """
    return F.avg_pool2d(x, 2)
