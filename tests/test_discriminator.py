"""histolib.discriminator: shapes, gradient flow, the residual block, minibatch stddev."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from histolib.config import HistoGANConfig
from histolib.discriminator import Discriminator, DiscriminatorBlock, MinibatchStdDev


def tiny(resolution=32, **kw):
    base = dict(resolution=resolution, d_capacity=2, d_max_channels=16, n_hist_blocks=1)
    base.update(kw)
    return HistoGANConfig.paper(**base)


@pytest.mark.parametrize("resolution", [8, 16, 32, 64, 128, 256])
def test_logits_shape_for_every_resolution(resolution):
    cfg = tiny(resolution)
    D = Discriminator(cfg)
    assert len(D.blocks) == cfg.n_blocks
    logits = D(torch.rand(3, 3, resolution, resolution) * 2 - 1)
    assert logits.shape == (3,) and torch.isfinite(logits).all()


def test_widths_double_from_capacity():
    D = Discriminator(tiny(64, d_capacity=3, d_max_channels=12))
    assert [b.conv2.out_channels for b in D.blocks] == [3, 6, 12, 12, 12]
    assert D.blocks[0].conv1.in_channels == 3


def test_gradient_reaches_the_input_and_every_parameter():
    torch.manual_seed(0)
    D = Discriminator(tiny(32))
    x = (torch.rand(4, 3, 32, 32) * 2 - 1).requires_grad_()
    D(x).sum().backward()
    assert x.grad is not None and (x.grad.flatten(1).abs().sum(1) > 0).all()
    for name, p in D.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient"


def test_residual_block_is_the_scaled_sum_then_a_pool():
    torch.manual_seed(0)
    blk = DiscriminatorBlock(4, 6)
    x = torch.randn(2, 4, 8, 8)
    skip = F.conv2d(x, blk.skip.weight / math.sqrt(4))
    h = F.leaky_relu(F.conv2d(x, blk.conv1.weight / math.sqrt(36), blk.conv1.bias, padding=1), 0.2) * math.sqrt(2)
    h = F.leaky_relu(F.conv2d(h, blk.conv2.weight / math.sqrt(54), blk.conv2.bias, padding=1), 0.2) * math.sqrt(2)
    torch.testing.assert_close(blk(x), F.avg_pool2d((skip + h) / math.sqrt(2), 2))


def test_minibatch_stddev_known_value_and_odd_batches():
    x = torch.zeros(4, 2, 3, 3)
    x[0], x[1], x[2], x[3] = 0.0, 1.0, 4.0, 7.0      # groups of 2: samples (0, 2) and (1, 3)
    y = MinibatchStdDev(group=2)(x)
    assert y.shape == (4, 3, 3, 3)
    std = torch.tensor([2.0, 3.0, 2.0, 3.0])          # |0 - 4| / 2, |1 - 7| / 2 (population std)
    torch.testing.assert_close(y[:, 2], std.view(4, 1, 1).expand(4, 3, 3), atol=1e-4, rtol=0)
    torch.testing.assert_close(y[:, :2], x)
    assert MinibatchStdDev(group=4)(torch.randn(3, 2, 2, 2)).shape == (3, 3, 2, 2)   # group falls back to 3
    assert MinibatchStdDev(group=4)(torch.randn(1, 2, 2, 2)).shape == (1, 3, 2, 2)


def test_minibatch_stddev_couples_samples_and_can_be_turned_off():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    x2 = x.clone()
    x2[1] = -x2[1]
    D_off = Discriminator(tiny(16, mbstd_group=0))
    torch.testing.assert_close(D_off(x)[0], D_off(x2)[0])          # without mbstd: samples independent
    torch.testing.assert_close(D_off(x[:1]), D_off(x)[:1])
    D_on = Discriminator(tiny(16, mbstd_group=4))
    with torch.no_grad():                                          # make the stddev input count
        D_on.out.weight[:, -4:] += 10.0
    assert not torch.allclose(D_on(x)[0], D_on(x2)[0])


def test_bad_input_names_the_argument():
    D = Discriminator(tiny(16))
    with pytest.raises(ValueError, match="images"):
        D(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="config"):
        Discriminator(None)


def test_parameter_counts_of_presets():
    for cfg in (HistoGANConfig.toy(), HistoGANConfig.paper()):
        with torch.device("meta"):
            D = Discriminator(cfg)
        n = sum(p.numel() for p in D.parameters())
        chs, ins = cfg.d_channels, (3,) + cfg.d_channels[:-1]
        expected = sum(a * b + 9 * a * b + b + 9 * b * b + b for a, b in zip(ins, chs))
        expected += (chs[-1] + cfg.mbstd_channels) * 4 + 1
        assert n == expected
        print(f"\n{cfg.resolution} px discriminator: {n / 1e6:.2f} M parameters")
