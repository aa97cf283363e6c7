"""histolib.widgets and the histogram drawings of histolib.viz."""
from __future__ import annotations

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from histolib.histogram import hellinger_distance, interpolate_histograms, rgb_uv_histogram  # noqa: E402


def _pair():
    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.interpolate(torch.rand(1, 3, 2, 2, generator=g), size=(12, 12), mode="nearest")[0]
    b = torch.nn.functional.interpolate(torch.rand(1, 3, 2, 2, generator=g), size=(12, 12), mode="nearest")[0]
    return a, b


def test_interpolation_slider_render_is_pure_and_the_slider_drives_the_view():
    pytest.importorskip("ipywidgets")
    from histolib.widgets import interpolation_slider

    a, b = _pair()
    s = interpolation_slider(a, b, n_frames=3, bins=16, steps=30)
    assert s.current.t == 0.0 and torch.equal(s.current.image, a)
    torch.testing.assert_close(s.current.hist, rgb_uv_histogram(a, bins=16))
    png0 = s.view.value
    assert png0[:4] == b"\x89PNG"

    f1, f2 = s.render(1.0), s.render(1.0)                       # pure: same t, same frame
    assert torch.equal(f1.image, f2.image) and torch.equal(f1.hist, f2.hist)
    assert s.current.t == 0.0                                   # render did not touch the view

    s.slider.value = 1.0                                        # what a user's drag does
    assert s.current.t == 1.0 and s.view.value != png0
    torch.testing.assert_close(s.current.hist, rgb_uv_histogram(b, bins=16))
    # the recoloured image moved towards image2's histogram
    h2 = rgb_uv_histogram(b, bins=16)
    assert hellinger_distance(h2, rgb_uv_histogram(s.current.image, bins=16)) < hellinger_distance(h2, rgb_uv_histogram(a, bins=16))

    s.slider.value = 0.5
    torch.testing.assert_close(s.current.hist, interpolate_histograms(s.h1, s.h2, 0.5))
    assert s.render(0.49).t == 0.5                              # snaps to the cached frames
    with pytest.raises(ValueError, match="^t:"):
        s.render(1.5)
    with pytest.raises(ValueError, match="^image1:"):
        interpolation_slider(a[None], b)


def test_show_histogram_draws_three_labelled_planes_per_row():
    from histolib.viz import show_histogram, show_interpolation_strip

    x = torch.rand(2, 3, 8, 8)
    h = rgb_uv_histogram(x, bins=16)
    fig = show_histogram(h, x)
    planes = [ax for ax in fig.axes if ax.get_title().endswith("plane")]
    assert len(planes) == 6
    assert planes[0].get_xlabel() == "u = log(R/G)" and planes[0].get_ylabel() == "v = log(R/B)"
    assert planes[0].images[0].norm.__class__.__name__ == "LogNorm"
    assert len(show_histogram(h[0]).axes) == 3 + 1               # 3 planes + the colour bar
    with pytest.raises(ValueError, match="^hist:"):
        show_histogram(h[:, :2])
    with pytest.raises(ValueError, match="^image:"):
        show_histogram(h, x[:1])
    strip = show_interpolation_strip(x, h, [0.0, 1.0])
    assert len(strip.axes) == 2 * 4
