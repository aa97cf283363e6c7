"""histolib.widgets: the generator sliders (colour control and truncation), on a tiny untrained HistoGAN."""
from __future__ import annotations

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from histolib.config import HistoGANConfig  # noqa: E402
from histolib.generator import HistoGAN  # noqa: E402
from histolib.histogram import hellinger_distance, interpolate_histograms, rgb_uv_histogram  # noqa: E402
from histolib.images import to_unit  # noqa: E402

pytest.importorskip("ipywidgets")


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    cfg = HistoGANConfig.toy(resolution=16, z_dim=16, w_dim=16, mapping_layers=2, capacity=2, max_channels=16,
                             hist_bins=16, hist_layers=2, hist_hidden=32)
    G = HistoGAN(cfg).eval().requires_grad_(False)
    with torch.no_grad():       # a w_avg away from 0, as a trained model has (checks truncation uses it)
        G.mapping.w_avg.copy_(G.mapping(torch.randn(64, cfg.z_dim)).mean(0))
    return G


def _targets():
    g = torch.Generator().manual_seed(1)
    up = lambda x: torch.nn.functional.interpolate(x, size=(12, 12), mode="nearest")[0]  # noqa: E731
    return up(torch.rand(1, 3, 2, 2, generator=g)), up(torch.rand(1, 3, 2, 2, generator=g) * 0.5)


def _hist(G, x):
    return rgb_uv_histogram(x, bins=G.config.hist_bins, sigma=G.config.hist_sigma)


def test_colour_control_slider_frames_match_the_generator_and_render_is_pure(G):
    from histolib.widgets import colour_control_slider

    a, b = _targets()
    z = torch.randn(3, G.config.z_dim, generator=torch.Generator().manual_seed(2))
    s = colour_control_slider(G, a, b, z, n_frames=5)
    h1, h2 = _hist(G, a), _hist(G, b)
    assert s.frames.shape == (5, 3, 3, 16, 16) and s.ts.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert s.current.t == 0.0 and s.view.value[:4] == b"\x89PNG"

    f = s.render(0.75)
    f_again = s.render(0.75)
    assert torch.equal(f.images, f_again.images) and f.distance == f_again.distance
    assert s.current.t == 0.0                                           # render did not touch the view
    # independently: the mix, the generator's images for it, and the distances
    hist = interpolate_histograms(h1, h2, 0.75)
    torch.testing.assert_close(f.hist, hist)
    with torch.no_grad():
        expected = G(z, hist[None].expand(3, -1, -1, -1), noise_mode="const")
    torch.testing.assert_close(f.images, expected)
    got = _hist(G, to_unit(expected.clamp(-1, 1)))
    torch.testing.assert_close(f.distances, hellinger_distance(hist, got))
    assert f.distance == pytest.approx(hellinger_distance(hist, got).mean().item(), rel=1e-5)
    assert f.distance_to_start == pytest.approx(hellinger_distance(h1, got).mean().item(), rel=1e-5)
    assert f.distance_to_end == pytest.approx(hellinger_distance(h2, got).mean().item(), rel=1e-5)
    # same z, different target: the content is fixed, only the histogram changed
    assert not torch.equal(s.render(0.0).images, s.render(1.0).images)
    torch.testing.assert_close(s.render(0.0).hist, h1)
    torch.testing.assert_close(s.render(1.0).hist, h2)


def test_colour_control_slider_drives_the_view_and_snaps(G):
    from histolib.widgets import colour_control_slider

    a, b = _targets()
    z = torch.randn(2, G.config.z_dim)
    s = colour_control_slider(G, a, b, z, n_frames=3)
    png0 = s.view.value
    s.slider.value = 1.0                                                # what a user's drag does
    assert s.current.t == 1.0 and s.view.value != png0
    assert torch.equal(s.current.images, s.render(1.0).images)
    assert s.render(0.3).t == 0.5 and s.render(0.2).t == 0.0            # nearest cached t
    with pytest.raises(ValueError, match="^t:"):
        s.render(1.5)


def test_colour_control_slider_rejects_bad_input(G):
    from histolib.widgets import colour_control_slider

    a, b = _targets()
    z = torch.randn(2, G.config.z_dim)
    with pytest.raises(ValueError, match="^target1:"):
        colour_control_slider(G, a[None], b, z)
    with pytest.raises(ValueError, match="^target2:.*\\[0, 1\\]"):
        colour_control_slider(G, a, b * 2 - 1.5, z)
    with pytest.raises(ValueError, match="^z:"):
        colour_control_slider(G, a, b, torch.randn(2, G.config.z_dim + 1))
    with pytest.raises(ValueError, match="^n_frames:"):
        colour_control_slider(G, a, b, z, n_frames=1)
    with pytest.raises(ValueError, match="^G:"):
        colour_control_slider(object(), a, b, z)


def test_truncation_slider_psi_zero_gives_one_face_and_psi_one_is_untruncated(G):
    from histolib.widgets import truncation_slider

    a, _ = _targets()
    hist = _hist(G, a)
    z = torch.randn(4, G.config.z_dim, generator=torch.Generator().manual_seed(3))
    s = truncation_slider(G, z, hist, n_frames=3)
    assert s.psis.tolist() == [0.0, 0.5, 1.0] and s.current.psi == 1.0   # starts untruncated
    hb = hist[None].expand(4, -1, -1, -1)
    with torch.no_grad():
        untruncated = G(z, hb, noise_mode="const")
        half = G(w=G.mapping.w_avg.lerp(G.mapping(z), 0.5), z=None, hist=hb, noise_mode="const")
        average = G(w=G.mapping.w_avg[None].expand(4, -1), z=None, hist=hb, noise_mode="const")
    torch.testing.assert_close(s.render(1.0).images, untruncated)
    torch.testing.assert_close(s.render(0.5).images, half)
    torch.testing.assert_close(s.render(0.0).images, average)
    f0, f1 = s.render(0.0), s.render(1.0)
    assert f0.spread < 1e-5 < f1.spread                                   # psi = 0: all the same face
    assert f1.spread == pytest.approx(untruncated.std(0, unbiased=False).mean().item(), rel=1e-5)
    got = _hist(G, to_unit(untruncated.clamp(-1, 1)))
    assert f1.distance == pytest.approx(hellinger_distance(hist, got).mean().item(), rel=1e-5)

    png = s.view.value
    s.slider.value = 0.0
    assert s.current.psi == 0.0 and s.view.value != png
    with pytest.raises(ValueError, match="^psi:"):
        s.render(-0.1)
    with pytest.raises(ValueError, match="^hist:"):
        truncation_slider(G, z, hist[None])
    with pytest.raises(ValueError, match="^psi_min, psi_max:"):
        truncation_slider(G, z, hist, psi_min=1.0, psi_max=0.5)
