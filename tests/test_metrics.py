"""Metrics: colour control behaves at its two extremes, SWD separates distributions, FID fails politely."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from histolib.config import HistoGANConfig
from histolib.data import ToyFaces
from histolib.histogram import hellinger_distance, rgb_uv_histogram
from histolib.images import to_signed, to_unit
from histolib.metrics import (FIDUnavailable, colour_control, content_diversity, fid, laplacian_pyramid, layout_maps,
                              sliced_wasserstein)

CFG = HistoGANConfig.toy(resolution=16, hist_bins=16)


class _Fake(nn.Module):
    """A stand-in generator: 'oracle' returns a known image whose histogram is the target's;
    'deaf' ignores the target and always makes the same image."""

    def __init__(self, images, mode):
        super().__init__()
        self.images, self.mode, self.config = images, mode, CFG
        self.p = nn.Parameter(torch.zeros(1))
        self.calls = 0

    def forward(self, z, hist, truncation_psi=1.0, noise_mode="const"):
        n = len(hist)
        if self.mode == "deaf":
            return self.images[:1].expand(n, -1, -1, -1)
        out = self.images[self.calls:self.calls + n]
        self.calls += n
        return out


def _faces(n, seed=0):
    ds = ToyFaces(size=n, resolution=16, seed=seed)
    return torch.stack([ds[i] for i in range(n)])


def test_colour_control_extremes():
    imgs = _faces(12)
    hists = rgb_uv_histogram(to_unit(imgs), bins=16, sigma=CFG.hist_sigma)
    perfect = colour_control(_Fake(imgs, "oracle"), hists, batch_size=5)
    assert perfect.hellinger < 1e-5 and perfect.ratio < 1e-4
    # the shuffled error is the independent computation H(target_{i-1}, hist_i)
    expected = hellinger_distance(hists.roll(1, 0), hists).mean().item()
    assert perfect.hellinger_shuffled == pytest.approx(expected, rel=1e-5)
    deaf = colour_control(_Fake(imgs, "deaf"), hists)
    assert 0.8 < deaf.ratio < 1.2  # same output for every target: matched is no better than shuffled
    with pytest.raises(ValueError, match="target_hists"):
        colour_control(_Fake(imgs, "deaf"), hists[:1])


class _Sampler(nn.Module):
    """A stand-in generator whose image depends on z only: image k of a pool, k from z."""

    def __init__(self, images):
        super().__init__()
        self.images, self.config = images, CFG
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, z, hist, truncation_psi=1.0, noise_mode="const"):
        k = (z[:, 0].abs() * 1e4).long() % len(self.images)
        return self.images[k]


def _layout_by_hand(x):
    """layout_maps written again for 16 px images (no pooling needed): numpy differences."""
    a = x.clamp(-1, 1).numpy()
    e = np.abs(np.diff(a, axis=3)).sum(1)[:, :-1, :] + np.abs(np.diff(a, axis=2)).sum(1)[:, :, :-1]
    return torch.from_numpy(e / e.mean(axis=(1, 2), keepdims=True))


def test_layout_maps():
    imgs = _faces(6)
    torch.testing.assert_close(layout_maps(imgs), _layout_by_hand(imgs))
    # at 64 px the image is first averaged down to 16 x 16
    big = ToyFaces(size=3, resolution=64).batch(range(3))
    torch.testing.assert_close(layout_maps(big), layout_maps(big.reshape(3, 3, 16, 4, 16, 4).mean((3, 5))))
    # colour-blind: the same face in another palette has (nearly) the same map; another face does not
    faces = ToyFaces(size=8, resolution=64)
    same = faces.recoloured([0], faces, [5])
    d_recoloured = (layout_maps(same) - layout_maps(faces.batch([0]))).abs().mean()
    d_other = (layout_maps(faces.batch([1])) - layout_maps(faces.batch([0]))).abs().mean()
    assert d_recoloured < 0.6 * d_other, (d_recoloured, d_other)
    assert layout_maps(torch.zeros(1, 3, 16, 16)).abs().max() == 0  # flat: no edges, no NaN
    with pytest.raises(ValueError, match="^images"):
        layout_maps(torch.zeros(3, 16, 16))


class _Painter(nn.Module):
    """A perfect colour-only stand-in: real layouts chosen by z, all in face 0's colours."""

    def __init__(self, faces, n):
        super().__init__()
        self.faces, self.n, self.config = faces, n, CFG
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, z, hist, truncation_psi=1.0, noise_mode="const"):
        k = ((z[:, 0].abs() * 1e4).long() % self.n).tolist()
        return self.faces.recoloured(k, self.faces, [0] * len(k))


def test_content_diversity_extremes():
    imgs = _faces(64)
    hists = rgb_uv_histogram(to_unit(imgs[:4]), bins=16, sigma=CFG.hist_sigma)
    # one image whatever z (a collapsed generator): no spread at all
    assert content_diversity(_Fake(imgs, "deaf"), hists, imgs) == 0.0
    # images drawn from the real pool by z: spread like the reals' (n_z = 64 samples of 64 faces)
    d = content_diversity(_Sampler(imgs), hists, imgs, n_z=64)
    assert 0.85 < d < 1.1, d
    # fixed colours, real layouts (what perfect colour control looks like) still count as diverse;
    # on raw pixels the same images would score far lower, as their colours no longer vary
    faces = ToyFaces(size=64, resolution=16)
    painted = content_diversity(_Painter(faces, 64), hists, imgs, n_z=64)
    z = torch.randn(64, CFG.z_dim, generator=torch.Generator().manual_seed(0))
    pixel_spread = (_Painter(faces, 64)(z, None).std(0).mean() / imgs.std(0).mean()).item()
    assert painted > 0.7 and pixel_spread < 0.6 * painted, (painted, pixel_spread)
    # an independent computation of the same number for one target
    z = torch.randn(8, CFG.z_dim, generator=torch.Generator().manual_seed(5))
    picked = _Sampler(imgs)(z, None)
    expected = (_layout_by_hand(picked).std(0).mean() / _layout_by_hand(imgs).std(0).mean()).item()
    assert content_diversity(_Sampler(imgs), hists[:1], imgs, n_z=8, seed=5) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="^n_z"):
        content_diversity(_Sampler(imgs), hists, imgs, n_z=1)
    with pytest.raises(ValueError, match="^reals"):
        content_diversity(_Sampler(imgs), hists, imgs[:1])
    with pytest.raises(ValueError, match="^reals: every real image has the same layout"):
        content_diversity(_Sampler(imgs), hists, imgs[:1].expand(4, -1, -1, -1))


def test_laplacian_pyramid_reconstructs():
    x = torch.rand(2, 3, 32, 32)
    levels = laplacian_pyramid(x, 3)
    assert [l.shape[-1] for l in levels] == [32, 16, 8]
    from histolib.metrics import _blur
    import torch.nn.functional as F
    rec = levels[-1]
    for band in reversed(levels[:-1]):
        rec = band + _blur(F.interpolate(rec, scale_factor=2, mode="nearest"))
    torch.testing.assert_close(rec, x, rtol=1e-5, atol=1e-5)


def test_swd_floor_and_separation():
    a, b = _faces(64, seed=1), _faces(64, seed=2)
    same = sliced_wasserstein(a, b, patches_per_image=32, directions=64, repeats=2)
    noise = to_signed(torch.rand_like(a))
    far = sliced_wasserstein(noise, b, patches_per_image=32, directions=64, repeats=2)
    assert set(same) == {16, "mean"}
    assert far["mean"] > 3 * same["mean"]
    with pytest.raises(ValueError, match="images_a"):
        sliced_wasserstein(a, b[:10])


def test_fid_unavailable_is_a_clear_error():
    a = _faces(4)
    try:
        value = fid(a, a)
    except FIDUnavailable as exc:
        assert "FID" in str(exc) and "\n" not in str(exc)
    else:
        assert value >= 0
