"""The shipped model: loads offline in one line, is small, documents its training, and controls colour.

The control-ratio test is the acceptance test of the pretrained weights (issue 5): on 64
held-out toy faces (a seed training never used) the Hellinger colour-control error must be
at most half of what the same images score against shuffled targets.
"""
from __future__ import annotations

import socket

import pytest
import torch

from histolib import pretrained
from histolib.data import ToyFaces
from histolib.histogram import rgb_uv_histogram
from histolib.images import to_unit
from histolib.metrics import colour_control, content_diversity

NAME = "toyfaces64"
HELD_OUT_SEED = 1_000_003


@pytest.fixture(scope="module")
def G():
    return pretrained.load(NAME)


@pytest.fixture(scope="module")
def held_out_hists(G):
    faces = ToyFaces(size=64, resolution=64, seed=HELD_OUT_SEED).batch(range(64))    # [-1, 1]
    return rgb_uv_histogram(to_unit(faces), bins=G.config.hist_bins, sigma=G.config.hist_sigma)


def test_loads_offline_in_one_line(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network access during load")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    G = pretrained.load(NAME)
    assert not G.training and not any(p.requires_grad for p in G.parameters())
    assert G.config.resolution == 64 and G.config.to_dict() == pretrained.info(NAME)["model_config"]


def test_file_is_small_and_metadata_records_the_training():
    path = pretrained.WEIGHTS_DIR / f"{NAME}.safetensors"
    assert NAME in pretrained.available()
    assert path.stat().st_size <= 20 * 2**20, f"{path.stat().st_size / 2**20:.1f} MB > 20 MB"
    meta = pretrained.info(NAME)
    assert isinstance(meta.get("command"), str) and "histolib.train" in meta["command"], \
        f"info({NAME!r}) lacks the training command (keys: {sorted(meta)})"
    assert meta["step"] and meta["step"] > 0


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match=f"^name: .*available: .*{NAME}"):
        pretrained.load("no-such-model")


def _images(G, hists):
    z = torch.randn(64, G.config.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return G(z, hists, noise_mode="const")


def test_generated_images_are_finite_and_near_the_range(G, held_out_hists):
    images = _images(G, held_out_hists)
    assert images.shape == (64, 3, 64, 64) and torch.isfinite(images).all()
    # toy faces are full of saturated colours, which the generator reaches with some overshoot
    outside = (images.abs() > 1.1).float().mean().item()
    assert outside < 0.05 and images.abs().max() < 4, f"{outside:.1%} beyond +-1.1, max {images.abs().max():.2f}"


def test_the_histogram_controls_colour(G, held_out_hists):
    """Each image is much closer to its own target than to another sample's (a generator that
    ignores its histogram scores about 1.0 here)."""
    cc = colour_control(G, held_out_hists)
    assert cc.hellinger < cc.hellinger_shuffled
    assert cc.ratio < 0.7 and cc.kl_ratio < 0.5, f"control ratio {cc.ratio:.3f}, KL ratio {cc.kl_ratio:.3f}"


def test_content_varies_with_z(G, held_out_hists):
    """Not collapsed: for one target, the layouts of the faces for different z spread at least half
    as much as real faces' layouts (``content_diversity`` is colour-blind: real layouts repainted with
    one target's colours score 0.87; the shipped model 0.71 (its earlier 80-kimg weights 0.57); that run pushed
    on with histogram weight 100 and 300 until it made nearly one face per target: 0.42 and 0.24)."""
    reals = ToyFaces(size=64, resolution=64, seed=HELD_OUT_SEED).batch(range(64))
    assert content_diversity(G, held_out_hists[:8], reals) > 0.5


# The acceptance targets (the shipped model: ratio 0.45 on these 64 targets, 0.6 % beyond +-1.1).
def test_colour_control_ratio_target(G, held_out_hists):
    cc = colour_control(G, held_out_hists)
    assert cc.ratio <= 0.5, f"control ratio {cc.ratio:.3f} (Hellinger {cc.hellinger:.3f} vs shuffled " \
                            f"{cc.hellinger_shuffled:.3f}); the shipped model must reach 0.5"


def test_generated_images_range_target(G, held_out_hists):
    outside = (_images(G, held_out_hists).abs() > 1.1).float().mean().item()
    assert outside < 0.01, f"{outside:.1%} of the pixel values are more than 0.1 outside [-1, 1]"
