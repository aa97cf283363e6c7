"""histolib.recolor: gradient descent on pixels brings an image's histogram to a target."""
from __future__ import annotations

import pytest
import torch

from histolib.histogram import hellinger_distance, rgb_uv_histogram
from histolib.recolor import recolor


def _images(seed, n=2, size=12):
    g = torch.Generator().manual_seed(seed)
    # a few flat colour blocks per image, like a picture rather than noise
    colours = torch.rand(n, 3, 3, 3, generator=g)
    return torch.nn.functional.interpolate(colours, size=(size, size), mode="nearest")


def test_recolor_lowers_the_distance_to_the_target():
    src, tgt = _images(0), _images(1)
    target = rgb_uv_histogram(tgt, bins=16, sigma=0.1)
    res = recolor(src, target, steps=40, lr=0.1, sigma=0.1)
    assert res.images.shape == src.shape and res.losses.shape == (41, 2)
    torch.testing.assert_close(res.losses.min(0).values, res.losses[res.best_step, [0, 1]])
    assert res.images.min() >= 0 and res.images.max() <= 1
    # row 0 is the starting distance; the returned images are the best step's
    torch.testing.assert_close(res.losses[0], hellinger_distance(target, rgb_uv_histogram(src, bins=16, sigma=0.1)))
    torch.testing.assert_close(res.losses.min(0).values,
                               hellinger_distance(target, rgb_uv_histogram(res.images, bins=16, sigma=0.1)))
    # nine flat colour blocks cannot match any target exactly, but they get much closer
    assert (res.losses.min(0).values < 0.8 * res.losses[0]).all()
    assert torch.equal(src, _images(0))                      # the input is not modified


def test_recolor_towards_own_histogram_stays_put_and_single_image_works():
    src = _images(2, n=1)[0]
    res = recolor(src, rgb_uv_histogram(src, bins=16), steps=10, lr=0.05)
    assert res.images.shape == src.shape
    assert res.best_step.item() == 0 and res.losses[0].item() < 1e-5
    torch.testing.assert_close(res.images, src.clamp(1e-3, 1 - 1e-3), rtol=0, atol=1e-6)


def test_smoothness_makes_changes_coherent():
    src, tgt = _images(3, n=1), _images(4, n=1)
    target = rgb_uv_histogram(tgt, bins=16, sigma=0.1)

    def tv_of_change(x):
        d = x - src
        return (d.diff(dim=-1).abs().mean() + d.diff(dim=-2).abs().mean()).item()
    plain = recolor(src, target, steps=30, lr=0.1, sigma=0.1).images
    smooth = recolor(src, target, steps=30, lr=0.1, sigma=0.1, smoothness=5.0).images
    assert tv_of_change(smooth) < tv_of_change(plain)


def test_recolor_rejects_bad_arguments():
    x = _images(5)
    h = rgb_uv_histogram(x, bins=8)
    with pytest.raises(ValueError, match="^images:"):
        recolor(x[:, :2], h)
    with pytest.raises(ValueError, match="^target:"):
        recolor(x, h[:, :, :4])
    with pytest.raises(ValueError, match="^kernel:"):
        recolor(x, h, kernel="hard")
    with pytest.raises(ValueError, match="^bins:"):
        recolor(x, h, bins=16)
