"""histolib.histogram: the RGB-uv histogram against the authors' outputs and the reference
path, its gradients and memory, the distances, interpolation and training targets."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from histolib.histogram import (
    KERNELS, hellinger_distance, interpolate_histograms, kl_divergence, random_targets,
    rgb_uv_histogram, rgb_uv_histogram_reference,
)

DATA = Path(__file__).resolve().parent / "data" / "rgbuv_reference.npz"
SOFT = ("inverse-quadratic", "gaussian")


def _rand(*shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=dtype)


# ------------------------------------------------------------ the authors' own numbers
@pytest.mark.parametrize("case", ["random", "smooth"])
@pytest.mark.parametrize("fn", [rgb_uv_histogram, rgb_uv_histogram_reference], ids=["fast", "reference"])
def test_matches_authors_reference_outputs(case, fn):
    data = np.load(DATA)
    x, expected = torch.from_numpy(data[f"inputs_{case}"]), torch.from_numpy(data[f"hist_{case}"])
    h = fn(x)
    assert h.dtype == torch.float32 and h.shape == expected.shape
    assert (h - expected).abs().max().item() <= 1e-6


# -------------------------------------------------------- fast path == reference path
CASES = {
    "square": (2, 3, 16, 16),
    "non-square": (3, 3, 7, 19),
    "one-pixel": (2, 3, 1, 1),
    "tall": (1, 3, 33, 5),
}


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bins", [2, 7, 64])
@pytest.mark.parametrize("case", list(CASES))
def test_fast_equals_reference(kernel, bins, case):
    x = _rand(*CASES[case], seed=bins, dtype=torch.float64)
    sigma = 0.02 if kernel != "gaussian" else 0.1
    for intensity in (True, False):
        fast = rgb_uv_histogram(x, bins=bins, sigma=sigma, kernel=kernel, intensity_scale=intensity)
        ref = rgb_uv_histogram_reference(x, bins=bins, sigma=sigma, kernel=kernel, intensity_scale=intensity)
        torch.testing.assert_close(fast, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_fast_equals_reference_float32_special_images(kernel):
    """Black, white, saturated primaries, grey ramps, a colour gradient, a tiny other boundary."""
    ramp = torch.linspace(0, 1, 24)
    imgs = torch.stack([
        torch.zeros(3, 12, 24),                                   # black
        torch.ones(3, 12, 24),                                    # white
        torch.tensor([1.0, 0, 0])[:, None, None].expand(3, 12, 24),   # saturated red
        torch.tensor([0, 1.0, 1.0])[:, None, None].expand(3, 12, 24),  # cyan
        ramp.expand(3, 12, 24),                                   # grey ramp
        torch.stack([ramp.expand(12, 24), ramp.flip(0).expand(12, 24),
                     torch.linspace(0, 1, 12)[:, None].expand(12, 24)]),  # colour gradient
    ])
    for boundary in ((-3.0, 3.0), (-1.5, 1.5)):
        fast = rgb_uv_histogram(imgs, kernel=kernel, boundary=boundary, sigma=0.05)
        ref = rgb_uv_histogram_reference(imgs, kernel=kernel, boundary=boundary, sigma=0.05)
        assert (fast - ref).abs().max().item() <= 1e-6


def test_max_size_resizes_like_the_reference_code():
    x = _rand(2, 3, 40, 23, seed=3)
    fast = rgb_uv_histogram(x, bins=16, max_size=20)
    ref = rgb_uv_histogram_reference(x, bins=16, max_size=20)
    by_hand = rgb_uv_histogram(F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False), bins=16)
    assert (fast - ref).abs().max() <= 1e-6
    torch.testing.assert_close(fast, by_hand, rtol=0, atol=0)
    # smaller than max_size on both sides: untouched
    torch.testing.assert_close(rgb_uv_histogram(x, bins=16, max_size=64), rgb_uv_histogram(x, bins=16))
    assert not torch.allclose(fast, rgb_uv_histogram(x, bins=16), atol=1e-4)


# ---------------------------------------------------------------- shapes and dtypes
def test_shapes_and_dtypes():
    x = _rand(4, 3, 10, 12)
    assert rgb_uv_histogram(x).shape == (4, 3, 64, 64)
    assert rgb_uv_histogram(x, bins=10).shape == (4, 3, 10, 10)
    assert rgb_uv_histogram(x[0]).shape == (3, 64, 64)
    assert rgb_uv_histogram(x).dtype == torch.float32
    assert rgb_uv_histogram(x.double()).dtype == torch.float64
    assert rgb_uv_histogram(x.half()).dtype == torch.float16
    torch.testing.assert_close(rgb_uv_histogram(x[1]), rgb_uv_histogram(x)[1])


def test_batch_is_independent_of_its_neighbours():
    """Vectorised over the batch: each image's histogram is its own."""
    x = _rand(5, 3, 9, 9, seed=1, dtype=torch.float64)
    batched = rgb_uv_histogram(x, bins=16)
    one_by_one = torch.stack([rgb_uv_histogram(im, bins=16) for im in x])
    torch.testing.assert_close(batched, one_by_one, rtol=0, atol=1e-14)


def test_chunking_does_not_change_the_result(monkeypatch):
    import histolib.histogram as H
    x = _rand(3, 3, 30, 30, seed=2, dtype=torch.float64).requires_grad_()
    w = _rand(3, 3, 16, 16, seed=3, dtype=torch.float64)
    h1 = H.rgb_uv_histogram(x, bins=16)
    g1, = torch.autograd.grad((h1 * w).sum(), x)
    monkeypatch.setattr(H, "_CHUNK_ELEMENTS", 1)          # the smallest chunks: 16 pixels
    h2 = H.rgb_uv_histogram(x, bins=16)
    g2, = torch.autograd.grad((h2 * w).sum(), x)
    torch.testing.assert_close(h1, h2, rtol=0, atol=1e-14)
    torch.testing.assert_close(g1, g2, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------ invariants
@pytest.mark.parametrize("kernel", KERNELS)
def test_normalised_and_non_negative(kernel):
    h = rgb_uv_histogram(_rand(3, 3, 8, 8), kernel=kernel)
    assert (h >= 0).all()
    torch.testing.assert_close(h.sum((1, 2, 3)), torch.ones(3), rtol=0, atol=1e-5)


def test_pixel_order_does_not_matter():
    x = _rand(1, 3, 10, 10, seed=4)
    perm = torch.randperm(100, generator=torch.Generator().manual_seed(0))
    shuffled = x.flatten(2)[:, :, perm].view_as(x)
    torch.testing.assert_close(rgb_uv_histogram(x), rgb_uv_histogram(shuffled), rtol=0, atol=1e-7)


def test_swapping_red_and_green_swaps_the_planes():
    """With R and G exchanged, the new R plane is the old G plane, and vice versa; the
    B plane's u and v exchange, so it is transposed. An independent check of the geometry."""
    x = _rand(2, 3, 12, 12, seed=5, dtype=torch.float64)
    h = rgb_uv_histogram(x, bins=20)
    hs = rgb_uv_histogram(x[:, [1, 0, 2]], bins=20)
    torch.testing.assert_close(hs[:, 0], h[:, 1], rtol=0, atol=1e-12)
    torch.testing.assert_close(hs[:, 1], h[:, 0], rtol=0, atol=1e-12)
    torch.testing.assert_close(hs[:, 2], h[:, 2].transpose(-1, -2), rtol=0, atol=1e-12)


def test_hard_kernel_counts_pixels():
    """A grey pixel sits at u = v = 0, between the two middle bins of an even bin count
    (no bin at 0), so with an odd count it lands in exactly the centre bin of each plane."""
    grey = torch.full((3, 4, 4), 0.5)
    h = rgb_uv_histogram(grey, bins=5, kernel="hard", intensity_scale=False)
    expected = torch.zeros(3, 5, 5)
    expected[:, 2, 2] = 1 / 3
    torch.testing.assert_close(h, expected, rtol=0, atol=1e-6)


def test_black_and_white_images_are_finite_and_equal():
    black, white = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    hb, hw = rgb_uv_histogram(black), rgb_uv_histogram(white)
    assert torch.isfinite(hb).all() and torch.isfinite(hw).all()
    # the same shape: both put every pixel at u = v = 0. Not bit-equal: black pixels weigh
    # sqrt(eps) = 1e-3, so the eps = 1e-6 in the normaliser is relatively larger (~1e-5)
    torch.testing.assert_close(hb, hw, rtol=1e-4, atol=1e-9)
    torch.testing.assert_close(hb, rgb_uv_histogram_reference(black), rtol=0, atol=1e-7)
    # the normaliser's eps against a raw sum of ~0.03: 1 - 3.6e-5, exactly as the reference code
    torch.testing.assert_close(hb.sum(), rgb_uv_histogram_reference(black).sum(), rtol=0, atol=1e-7)
    assert abs(hb.sum().item() - 1) < 1e-4


def test_values_outside_unit_range_are_clamped_with_a_warning():
    x = _rand(1, 3, 8, 8, seed=6)
    with pytest.warns(UserWarning, match=r"\[0, 1\]"):
        h255 = rgb_uv_histogram(x * 255)
    # clamping makes a [0, 255] mistake nearly white: same as the clamped image
    torch.testing.assert_close(h255, rgb_uv_histogram((x * 255).clamp(0, 1)))
    with pytest.warns(UserWarning, match="to_unit"):
        rgb_uv_histogram(x * 2 - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb_uv_histogram(x)                                  # no warning in range


# ------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("kernel", SOFT)
def test_gradcheck(kernel):
    x = (0.05 + 0.9 * _rand(2, 3, 2, 3, seed=7, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda z: rgb_uv_histogram(z, bins=6, sigma=0.4, kernel=kernel), (x,))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("intensity", [True, False])
def test_gradients_equal_the_reference_gradients(kernel, intensity):
    x = _rand(2, 3, 6, 7, seed=8, dtype=torch.float64).requires_grad_()
    w = _rand(2, 3, 12, 12, seed=9, dtype=torch.float64)
    kw = dict(bins=12, sigma=0.3, kernel=kernel, intensity_scale=intensity)
    g_fast, = torch.autograd.grad((rgb_uv_histogram(x, **kw) * w).sum(), x, allow_unused=True)
    if kernel == "hard" and not intensity:       # a plain count: no path from the colours at all
        assert not rgb_uv_histogram_reference(x, **kw).requires_grad
        assert g_fast is None or (g_fast == 0).all()
        return
    g_ref, = torch.autograd.grad((rgb_uv_histogram_reference(x, **kw) * w).sum(), x)
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-9, atol=1e-12)
    assert g_fast.abs().sum() > 0


@pytest.mark.parametrize("kernel", SOFT)
def test_finite_gradients_for_black_white_and_saturated(kernel):
    imgs = torch.stack([torch.zeros(3, 4, 4), torch.ones(3, 4, 4),
                        torch.tensor([1.0, 0, 0])[:, None, None].expand(3, 4, 4).clone(),
                        torch.tensor([0, 0.3, 1.0])[:, None, None].expand(3, 4, 4).clone()]).requires_grad_()
    target = rgb_uv_histogram(_rand(4, 3, 4, 4, seed=10))
    loss = hellinger_distance(target, rgb_uv_histogram(imgs, kernel=kernel)).sum()
    g, = torch.autograd.grad(loss, imgs)
    assert torch.isfinite(g).all()


def test_memory_bounded_at_256px_batch_16():
    """Forward + backward for 16 images of 256 x 256 needs far less than 2 GB extra memory.

    Run with 8 bins to keep the test fast: the memory does not depend on the bin count
    (per-pixel tensors are [B, N] or [B, N, 3]; the chunk workspace has a fixed budget in
    elements), only the arithmetic does. benchmarks/bench_histogram.py measures 64 bins."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")                                  # reset the resident high-water mark
    except OSError:
        pytest.skip("needs Linux /proc/self/clear_refs to measure the peak")

    def kb(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
    x = _rand(16, 3, 256, 256, seed=11).requires_grad_()
    w = _rand(16, 3, 8, 8, seed=12)
    base = kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    (rgb_uv_histogram(x, bins=8) * w).sum().backward()
    extra_mb = (kb("VmHWM") - base) / 1024
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert extra_mb < 2048, f"peak {extra_mb:.0f} MB"


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs, name", [
    (dict(images=torch.rand(3, 8)), "images"),
    (dict(images=torch.rand(2, 1, 3, 8, 8)), "images"),
    (dict(images=torch.rand(2, 4, 8, 8)), "images"),
    (dict(images=torch.rand(1, 8, 8)), "images"),
    (dict(images=torch.zeros(1, 3, 8, 8, dtype=torch.uint8)), "images"),
    (dict(images=np.zeros((3, 8, 8))), "images"),
    (dict(bins=1), "bins"),
    (dict(bins=2.5), "bins"),
    (dict(sigma=0), "sigma"),
    (dict(sigma=-0.1), "sigma"),
    (dict(kernel="rbf"), "kernel"),
    (dict(boundary=(3, -3)), "boundary"),
    (dict(boundary=(-2, 4)), "boundary"),
    (dict(boundary=3), "boundary"),
    (dict(max_size=0), "max_size"),
])
def test_bad_arguments_raise_value_error_naming_them(kwargs, name):
    kwargs = {"images": torch.rand(1, 3, 8, 8), **kwargs}
    with pytest.raises(ValueError, match=rf"^{name}:"):
        rgb_uv_histogram(**kwargs)


# ----------------------------------------------------------------------- distances
def test_hellinger_known_values():
    p = torch.zeros(2, 3, 4, 4)
    q = torch.zeros(2, 3, 4, 4)
    p[:, 0, 0, 0] = 1.0
    q[0, 0, 0, 0] = 1.0                     # identical to p[0]
    q[1, 1, 2, 2] = 1.0                     # disjoint from p[1]
    torch.testing.assert_close(hellinger_distance(p, q), torch.tensor([0.0, 1.0]))
    # two half-and-half histograms sharing one bin: (1/sqrt2) * sqrt((sqrt(.5) - 0)^2 * 2) = 1/sqrt2
    a, b = torch.zeros(3, 2, 2), torch.zeros(3, 2, 2)
    a[0, 0, 0] = a[0, 0, 1] = 0.5
    b[0, 0, 0] = b[1, 1, 1] = 0.5
    torch.testing.assert_close(hellinger_distance(a, b), torch.tensor(math.sqrt(0.5)))


def test_hellinger_matches_numpy_and_is_symmetric():
    p = rgb_uv_histogram(_rand(3, 3, 8, 8, seed=13, dtype=torch.float64), bins=8)
    q = rgb_uv_histogram(_rand(3, 3, 8, 8, seed=14, dtype=torch.float64), bins=8)
    d = hellinger_distance(p, q)
    expected = [np.linalg.norm(np.sqrt(a.numpy().ravel()) - np.sqrt(b.numpy().ravel())) / np.sqrt(2) for a, b in zip(p, q)]
    np.testing.assert_allclose(d.numpy(), expected, rtol=1e-12)
    torch.testing.assert_close(d, hellinger_distance(q, p))
    assert ((d > 0) & (d < 1)).all()


def test_hellinger_gradients_finite_at_empty_bins_and_at_zero_distance():
    p = torch.zeros(1, 3, 4, 4)
    p[0, 0, 1, 1] = 1.0
    q = torch.full((1, 3, 4, 4), 1 / 48, requires_grad=True)
    g, = torch.autograd.grad(hellinger_distance(p, q).sum(), q)
    assert torch.isfinite(g).all()
    pp = p.clone().requires_grad_()
    g2, = torch.autograd.grad(hellinger_distance(pp, p).sum(), pp)     # distance 0
    assert torch.isfinite(g2).all() and (g2 == 0).all()
    gp, = torch.autograd.grad(hellinger_distance(pp, q.detach()).sum(), pp)   # p has empty bins
    assert torch.isfinite(gp).all()


def test_kl_divergence_known_values():
    p = torch.zeros(3, 1, 2)
    q = torch.zeros(3, 1, 2)
    p[0, 0] = torch.tensor([0.5, 0.5])
    q[0, 0] = torch.tensor([0.25, 0.75])
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    torch.testing.assert_close(kl_divergence(p, q), torch.tensor(expected), rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(kl_divergence(p, p), torch.tensor(0.0))
    reverse = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    torch.testing.assert_close(kl_divergence(q, p), torch.tensor(reverse), rtol=1e-6, atol=1e-8)


def test_kl_divergence_batched_non_negative_finite_with_empty_bins():
    p = rgb_uv_histogram(_rand(4, 3, 6, 6, seed=15), bins=16, kernel="hard")    # many empty bins
    q = rgb_uv_histogram(_rand(4, 3, 6, 6, seed=16), bins=16, kernel="hard")
    d = kl_divergence(p, q)
    assert d.shape == (4,) and torch.isfinite(d).all() and (d >= 0).all()
    assert (kl_divergence(p, p).abs() < 1e-6).all()


def test_distances_reject_bad_shapes():
    with pytest.raises(ValueError, match="^p"):
        hellinger_distance(torch.rand(4, 4), torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="p, q"):
        kl_divergence(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 5, 5))


# ------------------------------------------------------------------- interpolation
def test_interpolate_histograms():
    h1 = rgb_uv_histogram(_rand(3, 3, 6, 6, seed=17), bins=8)
    h2 = rgb_uv_histogram(_rand(3, 3, 6, 6, seed=18), bins=8)
    torch.testing.assert_close(interpolate_histograms(h1, h2, 0.0), h1)
    torch.testing.assert_close(interpolate_histograms(h1, h2, 1.0), h2)
    mid = interpolate_histograms(h1, h2, 0.25)
    torch.testing.assert_close(mid, 0.75 * h1 + 0.25 * h2)
    torch.testing.assert_close(mid.sum((1, 2, 3)), torch.ones(3), rtol=0, atol=1e-5)
    t = torch.tensor([0.0, 0.5, 1.0])
    per = interpolate_histograms(h1, h2, t)
    for k in range(3):
        torch.testing.assert_close(per[k], (1 - t[k]) * h1[k] + t[k] * h2[k])
    # the mix moves monotonically away from h1 towards h2
    ts = [0.0, 0.25, 0.5, 0.75, 1.0]
    d = [hellinger_distance(interpolate_histograms(h1, h2, s), h2) for s in ts]
    assert all((a > b).all() for a, b in zip(d, d[1:]))
    with pytest.raises(ValueError, match="^t:"):
        interpolate_histograms(h1, h2, 1.5)
    with pytest.raises(ValueError, match="^t:"):
        interpolate_histograms(h1, h2, torch.rand(5))


# ----------------------------------------------------------------- training targets
@pytest.mark.parametrize("batch", [1, 2, 3, 7])
def test_random_targets_any_batch(batch):
    hists = rgb_uv_histogram(_rand(batch, 3, 6, 6, seed=batch), bins=8)
    targets, (i, j, t) = random_targets(hists, torch.Generator().manual_seed(0), return_parts=True)
    assert targets.shape == hists.shape
    assert ((t >= 0) & (t < 1)).all()
    if batch > 1:
        assert (i != j).all()
    for k in range(batch):
        torch.testing.assert_close(targets[k], t[k] * hists[i[k]] + (1 - t[k]) * hists[j[k]])
    torch.testing.assert_close(targets.sum((1, 2, 3)), torch.ones(batch), rtol=0, atol=1e-5)


def test_random_targets_single_images():
    """mix=False: each target is exactly one of the batch's histograms, drawn with the same i."""
    hists = rgb_uv_histogram(_rand(5, 3, 6, 6, seed=23), bins=8)
    mixed, (i, _, _) = random_targets(hists, torch.Generator().manual_seed(4), return_parts=True)
    single, (i2, _, t) = random_targets(hists, torch.Generator().manual_seed(4), return_parts=True, mix=False)
    assert torch.equal(i, i2) and (t == 1).all()
    torch.testing.assert_close(single, hists[i], rtol=0, atol=0)
    assert not torch.allclose(single, mixed)


def test_random_targets_reproducible_and_varied():
    hists = rgb_uv_histogram(_rand(16, 3, 6, 6, seed=19), bins=8)
    a = random_targets(hists, torch.Generator().manual_seed(1))
    b = random_targets(hists, torch.Generator().manual_seed(1))
    c = random_targets(hists, torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    _, (i, j, t) = random_targets(hists, torch.Generator().manual_seed(3), return_parts=True)
    assert len(set(i.tolist())) > 4 and t.std() > 0.1          # not a fixed pairing, not a fixed t
    with pytest.raises(ValueError, match="^hists:"):
        random_targets(hists[0])


def test_distances_broadcast_to_all_pairs_and_interpolation_fans_out():
    h = rgb_uv_histogram(_rand(4, 3, 6, 6, seed=20), bins=8)
    pairs = hellinger_distance(h[:, None], h[None, :])                    # [4, 4]
    assert pairs.shape == (4, 4)
    for a in range(4):
        for b in range(4):
            torch.testing.assert_close(pairs[a, b], hellinger_distance(h[a], h[b]))
    fan = interpolate_histograms(h[0], h[1], torch.tensor([0.0, 0.5, 1.0]))  # one pair, three t
    assert fan.shape == (3, 3, 8, 8)
    torch.testing.assert_close(fan[1], 0.5 * (h[0] + h[1]))


def test_empty_batch_and_sigma_types():
    with pytest.raises(ValueError, match="^images:"):
        rgb_uv_histogram(torch.rand(0, 3, 4, 4))
    with pytest.raises(ValueError, match="^sigma:"):
        rgb_uv_histogram(torch.rand(1, 3, 4, 4), sigma=True)
    h = rgb_uv_histogram(torch.rand(1, 3, 4, 4), sigma=np.float32(0.05), bins=np.int64(8))
    assert h.shape == (1, 3, 8, 8)
