"""histolib.layers: the modulated convolution (three implementations), equalized-lr layers, noise, resampling."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from histolib.layers import (DEMOD_EPS, EqualConv2d, EqualLinear, ModulatedConv2d, NoiseInjection,
                             choose_modconv_impl, downsample2x, lrelu_gain, modulated_conv2d, upsample2x)

IMPLS = ["unfold", "grouped", "scaled", "auto"]


def loop_reference(x, weight, styles, demodulate, padding):
    """Independent reference: one plain convolution per sample, weights built with explicit loops."""
    outs = []
    for b in range(x.shape[0]):
        w = weight * styles[b].view(1, -1, 1, 1)
        if demodulate:
            norms = torch.stack([(w[o] ** 2).sum() for o in range(w.shape[0])])
            w = w / torch.sqrt(norms + DEMOD_EPS).view(-1, 1, 1, 1)
        outs.append(F.conv2d(x[b:b + 1], w, padding=padding))
    return torch.cat(outs)


def _inputs(b, c_in, c_out, k, h, w, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c_in, h, w, generator=g, dtype=dtype)
    weight = torch.randn(c_out, c_in, k, k, generator=g, dtype=dtype) / math.sqrt(c_in * k * k)
    styles = 1 + 0.5 * torch.randn(b, c_in, generator=g, dtype=dtype)
    return x, weight, styles


def _value_and_grads(fn, x, weight, styles, upstream):
    x, weight, styles = (t.detach().clone().requires_grad_() for t in (x, weight, styles))
    y = fn(x, weight, styles)
    (y * upstream).sum().backward()
    return y.detach(), x.grad, weight.grad, styles.grad


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("shape", [
    # b, c_in, c_out, k, h, w, padding
    (3, 8, 5, 3, 7, 6, None),
    (2, 16, 3, 1, 8, 8, None),      # toRGB-like 1x1
    (1, 4, 6, 3, 5, 5, 0),          # no padding: output shrinks
    (4, 32, 32, 3, 4, 4, None),
])
def test_modulated_conv2d_matches_loop_reference(impl, demodulate, shape):
    b, c_in, c_out, k, h, w, padding = shape
    x, weight, styles = _inputs(b, c_in, c_out, k, h, w)
    pad = k // 2 if padding is None else padding
    upstream = torch.randn(b, c_out, h + 2 * pad - k + 1, w + 2 * pad - k + 1, generator=torch.Generator().manual_seed(1))
    ref = _value_and_grads(lambda *a: loop_reference(*a, demodulate, pad), x, weight, styles, upstream)
    got = _value_and_grads(lambda *a: modulated_conv2d(*a, demodulate=demodulate, padding=padding, impl=impl),
                           x, weight, styles, upstream)
    for name, r, g in zip(["value", "d/dx", "d/dweight", "d/dstyles"], ref, got):
        torch.testing.assert_close(g, r, msg=lambda m: f"{impl} {name}: {m}")


@pytest.mark.parametrize("impl", ["unfold", "grouped", "scaled"])
def test_impls_agree_in_float64_to_float64_precision(impl):
    x, weight, styles = _inputs(2, 12, 7, 3, 9, 9, dtype=torch.float64)
    upstream = torch.randn(2, 7, 9, 9, dtype=torch.float64)
    ref = _value_and_grads(lambda *a: loop_reference(*a, True, 1), x, weight, styles, upstream)
    got = _value_and_grads(lambda *a: modulated_conv2d(*a, impl=impl), x, weight, styles, upstream)
    for r, g in zip(ref, got):
        torch.testing.assert_close(g, r)


def test_unit_styles_without_demodulation_is_a_plain_convolution():
    x, weight, _ = _inputs(2, 6, 4, 3, 8, 8)
    for impl in IMPLS:
        y = modulated_conv2d(x, weight, torch.ones(2, 6), demodulate=False, impl=impl)
        torch.testing.assert_close(y, F.conv2d(x, weight, padding=1))


def test_demodulation_removes_the_style_scale_and_normalises_the_weights():
    x, weight, styles = _inputs(2, 8, 5, 3, 6, 6)
    for impl in ["unfold", "grouped", "scaled"]:
        y = modulated_conv2d(x, weight, styles, impl=impl)
        torch.testing.assert_close(modulated_conv2d(x, weight, 7.0 * styles, impl=impl), y)
        y_nodemod = modulated_conv2d(x, weight, 7.0 * styles, demodulate=False, impl=impl)
        torch.testing.assert_close(y_nodemod, 7.0 * modulated_conv2d(x, weight, styles, demodulate=False, impl=impl))
    # with unit-norm effective weights, a unit-variance white input gives unit-variance outputs
    x = torch.randn(64, 8, 32, 32, generator=torch.Generator().manual_seed(3))
    styles = 1 + torch.randn(64, 8, generator=torch.Generator().manual_seed(4))
    var = modulated_conv2d(x, weight, styles, padding=0).var(dim=(0, 2, 3))
    torch.testing.assert_close(var, torch.ones(5), atol=0.03, rtol=0)


def test_auto_picks_a_real_implementation():
    x, weight, _ = _inputs(4, 8, 8, 3, 8, 8)
    assert choose_modconv_impl(x, weight) in ("grouped", "scaled")


def test_modulated_conv2d_rejects_bad_arguments():
    x, weight, styles = _inputs(2, 8, 5, 3, 6, 6)
    with pytest.raises(ValueError, match="impl"):
        modulated_conv2d(x, weight, styles, impl="fast")
    with pytest.raises(ValueError, match="styles"):
        modulated_conv2d(x, weight, styles[:, :4])
    with pytest.raises(ValueError, match="weight"):
        modulated_conv2d(x, weight[:, :4], styles)
    with pytest.raises(ValueError, match="x"):
        modulated_conv2d(x[0], weight, styles)


def test_modulated_conv_module_edits_no_parameter_in_place_and_styles_start_at_one():
    torch.manual_seed(0)
    m = ModulatedConv2d(6, 4, 3, w_dim=10)
    torch.testing.assert_close(m.affine.bias.detach(), torch.ones(6))
    versions = {n: p._version for n, p in m.named_parameters()}
    x, w = torch.randn(3, 6, 5, 5), torch.randn(3, 10)
    for impl in IMPLS:
        m(x, w, impl).square().sum().backward()
    assert {n: p._version for n, p in m.named_parameters()} == versions
    # the module is modulated_conv2d with weight * 1/sqrt(fan_in) and styles = affine(w)
    ref = loop_reference(x, m.weight / math.sqrt(6 * 9), m.affine(w), True, 1)
    torch.testing.assert_close(m(x, w), ref)


def test_equal_linear_scales_at_run_time():
    torch.manual_seed(0)
    lin = EqualLinear(20, 7, bias_init=0.5, lr_mult=0.01)
    x = torch.randn(5, 20)
    # stored N(0,1)/lr_mult, used times lr_mult/sqrt(in): effective weights ~ N(0, 1/in)
    w_eff = lin.weight * 0.01 / math.sqrt(20)
    torch.testing.assert_close(lin(x), x @ w_eff.t() + 0.5)
    # the gradient on the stored weight is lr_mult/sqrt(in) times the gradient on the effective weight
    lin(x).sum().backward()
    torch.testing.assert_close(lin.weight.grad, torch.ones(7, 1) @ x.sum(0, keepdim=True) * 0.01 / math.sqrt(20))
    big = EqualLinear(4096, 256)
    assert abs(big.weight.std().item() - 1) < 0.01                         # stored N(0, 1)
    assert abs((big.weight * big.weight_gain).std().item() * math.sqrt(4096) - 1) < 0.01


def test_lrelu_gain_keeps_the_second_moment():
    x = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0))
    assert abs(lrelu_gain(x).square().mean().item() - 1.04) < 0.01        # (1 + 0.2^2) / 2 * 2
    lin = EqualLinear(512, 512, activation="lrelu")
    y = lin(torch.randn(4096, 512))
    assert 0.9 < y.square().mean().item() < 1.2


def test_equal_conv2d_matches_functional_conv():
    torch.manual_seed(0)
    conv = EqualConv2d(5, 6, 3, activation="lrelu")
    x = torch.randn(2, 5, 8, 8)
    ref = F.leaky_relu(F.conv2d(x, conv.weight / math.sqrt(45), conv.bias, padding=1), 0.2) * math.sqrt(2)
    torch.testing.assert_close(conv(x), ref)
    assert EqualConv2d(5, 6, 3, stride=2)(x).shape == (2, 6, 4, 4)


def test_noise_injection_is_identity_at_init_and_per_channel():
    m = NoiseInjection(3)
    x, noise = torch.randn(2, 3, 4, 4), torch.randn(2, 1, 4, 4)
    torch.testing.assert_close(m(x, noise), x)
    with torch.no_grad():
        m.strength.copy_(torch.tensor([0.0, 1.0, -2.0]))
    y = m(x, noise)
    torch.testing.assert_close(y[:, 0], x[:, 0])
    torch.testing.assert_close(y[:, 1], x[:, 1] + noise[:, 0])
    torch.testing.assert_close(y[:, 2], x[:, 2] - 2 * noise[:, 0])
    torch.testing.assert_close(m(x, None), x)


def test_upsample2x_is_the_1331_filter_away_from_the_border():
    x = torch.randn(2, 3, 6, 6)
    y = upsample2x(x)
    assert y.shape == (2, 3, 12, 12)
    # separable: rows then columns, each new sample 3/4 nearest + 1/4 next
    def up1d(t):  # along the last axis, interior samples only
        a, b = t[..., :-1], t[..., 1:]
        return torch.stack([0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b], dim=-1).flatten(-2)
    ref = up1d(up1d(x).transpose(-1, -2)).transpose(-1, -2)      # covers output pixels 1 .. 10
    torch.testing.assert_close(y[..., 1:-1, 1:-1], ref)
    torch.testing.assert_close(upsample2x(torch.ones(1, 1, 3, 3)), torch.ones(1, 1, 6, 6))


def test_downsample2x_averages_2x2_blocks():
    x = torch.randn(2, 3, 8, 6)
    torch.testing.assert_close(downsample2x(x), x.reshape(2, 3, 4, 2, 3, 2).mean(dim=(3, 5)))
