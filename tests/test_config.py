"""HistoGANConfig: presets, derived sizes, validation, serialisation."""
from __future__ import annotations

import dataclasses
import json

import pytest

from histolib.config import HistoGANConfig


def test_paper_preset_matches_reference_code():
    c = HistoGANConfig.paper()
    assert c.resolution == 256 and c.n_blocks == 7
    # the reference code at capacity 16: capacity * 2 ** (i + 1) for i in 0..6, reversed
    assert c.g_channels == (2048, 1024, 512, 256, 128, 64, 32)
    assert c.g_const_channels == 64                   # 4 * capacity
    assert c.block_resolutions == (4, 8, 16, 32, 64, 128, 256)
    assert c.n_hist_blocks == 2 and c.n_w_blocks == 5
    assert c.hist_bins == 64 and c.hist_dim == 12288
    assert c.mapping_layers == 8 and c.hist_layers == 8 and c.hist_hidden == 1024
    assert c.z_dim == c.w_dim == 512 and c.mapping_lr_mult == 0.01
    assert c.d_channels == (16, 32, 64, 128, 256, 512, 1024)


def test_toy_preset_is_64px_and_works_at_32px():
    c = HistoGANConfig.toy()
    assert c.resolution == 64 and c.n_blocks == 5
    assert len(c.g_channels) == len(c.d_channels) == 5
    c32 = HistoGANConfig.toy(resolution=32)
    assert c32.resolution == 32 and c32.n_blocks == 4 and c32.n_hist_blocks == 2
    assert c32.block_resolutions[-1] == 32


def test_widths_double_and_are_capped():
    c = HistoGANConfig.paper(resolution=64, capacity=4, max_channels=32, d_capacity=3, d_max_channels=20)
    assert c.g_channels == (32, 32, 32, 16, 8)        # 4 * (32, 16, 8, 4, 2), capped at 32
    assert c.d_channels == (3, 6, 12, 20, 20)         # 3 * (1, 2, 4, 8, 16), capped at 20
    assert c.g_const_channels == 16


@pytest.mark.parametrize("resolution", [8, 16, 32, 64, 128, 256, 512, 1024])
def test_n_blocks_is_log2_minus_one(resolution):
    c = HistoGANConfig.paper(resolution=resolution, n_hist_blocks=1)
    assert 4 * 2 ** (c.n_blocks - 1) == resolution
    assert c.resolution // 2 ** c.n_blocks == 2       # the discriminator ends at 2x2


@pytest.mark.parametrize("field, value", [
    ("resolution", 100), ("resolution", 4), ("resolution", 2048), ("resolution", True), ("resolution", 64.0),
    ("z_dim", 0), ("w_dim", -1), ("mapping_layers", 0), ("capacity", 0), ("max_channels", 0),
    ("hist_bins", 1), ("hist_layers", 0), ("hist_hidden", 0), ("d_capacity", 0), ("d_max_channels", 0),
    ("mapping_lr_mult", 0.0), ("hist_lr_mult", -1.0), ("hist_sigma", 0.0), ("hist_sigma", float("nan")),
    ("w_avg_beta", 1.0), ("mbstd_group", 1), ("mbstd_group", -2), ("mbstd_channels", 0),
    ("n_hist_blocks", 0), ("n_hist_blocks", 7), ("n_hist_blocks", 9), ("const_channels", 0),
])
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        HistoGANConfig.paper(**{field: value})


def test_more_hist_blocks_than_blocks_is_refused():
    with pytest.raises(ValueError, match="n_hist_blocks"):
        HistoGANConfig.toy(resolution=8)              # 2 blocks, 2 histogram blocks: none left for w
    assert HistoGANConfig.toy(resolution=8, n_hist_blocks=1).n_w_blocks == 1


def test_frozen():
    c = HistoGANConfig.toy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.resolution = 128


def test_dict_round_trip_through_json():
    for c in (HistoGANConfig.toy(), HistoGANConfig.paper(const_channels=32, mbstd_group=0)):
        d = json.loads(json.dumps(c.to_dict()))
        assert HistoGANConfig.from_dict(d) == c


def test_from_dict_rejects_unknown_keys_and_bad_values():
    d = HistoGANConfig.toy().to_dict()
    with pytest.raises(ValueError, match="unknown"):
        HistoGANConfig.from_dict({**d, "resolutoin": 64})
    with pytest.raises(ValueError, match="resolution"):
        HistoGANConfig.from_dict({**d, "resolution": 48})
