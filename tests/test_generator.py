"""histolib.generator.HistoGAN: shapes, what the histogram and z control, styles, gradients, sizes."""
from __future__ import annotations

import pytest
import torch

from histolib.config import HistoGANConfig
from histolib.generator import HistoGAN


def tiny(resolution=32, **kw):
    """A generator config small enough to build and run in milliseconds at any resolution."""
    base = dict(resolution=resolution, z_dim=16, w_dim=16, mapping_layers=2, capacity=1, max_channels=16,
                hist_bins=8, hist_layers=2, hist_hidden=24, d_capacity=2, d_max_channels=16)
    base.update(kw)
    return HistoGANConfig.paper(**base)


def random_hist(b, bins, seed):
    h = torch.rand(b, 3, bins, bins, generator=torch.Generator().manual_seed(seed)) ** 4
    return h / h.sum(dim=(1, 2, 3), keepdim=True)


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    cfg = tiny(32, capacity=2)
    return cfg, HistoGAN(cfg)


@pytest.mark.parametrize("resolution", [8, 16, 32, 64, 128, 256])
def test_output_shape_for_every_resolution(resolution):
    cfg = tiny(resolution, n_hist_blocks=1 if resolution == 8 else 2)
    G = HistoGAN(cfg)
    img = G(torch.randn(2, 16), random_hist(2, 8, 0))
    assert img.shape == (2, 3, resolution, resolution)
    assert torch.isfinite(img).all()


def test_toy_preset_output_is_in_about_the_image_range():
    torch.manual_seed(0)
    cfg = HistoGANConfig.toy()
    G = HistoGAN(cfg)
    img = G(torch.randn(8, cfg.z_dim), random_hist(8, cfg.hist_bins, 0))
    assert img.shape == (8, 3, 64, 64)
    assert 0.2 < img.std().item() < 3.0 and img.abs().mean().item() < 2.0   # unsquashed, O(1) at init


def test_histogram_changes_output_but_not_the_blocks_before_it(small):
    cfg, G = small
    first_hist_block = G.synthesis.blocks[cfg.n_w_blocks]
    seen = []
    hook = first_hist_block.register_forward_pre_hook(lambda mod, args: seen.append((args[0].clone(), args[1].clone())))
    try:
        z = torch.randn(3, cfg.z_dim)
        a = G(z, random_hist(3, cfg.hist_bins, 1), noise_mode="const")
        b = G(z, random_hist(3, cfg.hist_bins, 2), noise_mode="const")
    finally:
        hook.remove()
    assert (a - b).abs().mean() > 1e-3 * a.abs().mean()
    (xa, rgba), (xb, rgbb) = seen
    torch.testing.assert_close(xa, xb, rtol=0, atol=0)        # features entering the block: identical
    torch.testing.assert_close(rgba, rgbb, rtol=0, atol=0)    # and the RGB skip sum so far


def test_z_changes_output_for_a_fixed_histogram(small):
    cfg, G = small
    h = random_hist(3, cfg.hist_bins, 1)
    a = G(torch.randn(3, cfg.z_dim), h, noise_mode="const")
    b = G(torch.randn(3, cfg.z_dim), h, noise_mode="const")
    assert (a - b).abs().mean() > 1e-3 * a.abs().mean()


def test_noise_modes_and_reproducibility(small):
    cfg, G = small
    z, h = torch.randn(2, cfg.z_dim), random_hist(2, cfg.hist_bins, 1)
    with torch.no_grad():                           # give noise a visible strength
        for blk in G.synthesis.blocks:
            blk.noise1.strength.fill_(0.5)
            blk.noise2.strength.fill_(0.5)
    try:
        for mode in ("const", "none"):
            torch.testing.assert_close(G(z, h, noise_mode=mode), G(z, h, noise_mode=mode), rtol=0, atol=0)
        assert not torch.equal(G(z, h, noise_mode="random"), G(z, h, noise_mode="random"))
        assert not torch.equal(G(z, h, noise_mode="const"), G(z, h, noise_mode="none"))
        torch.manual_seed(5)
        r1 = G(z, h)
        torch.manual_seed(5)
        torch.testing.assert_close(G(z, h), r1, rtol=0, atol=0)
        # the constant noise is the same in a freshly built model, whatever the global seed
        torch.manual_seed(123)
        G2 = HistoGAN(cfg)
        for b1, b2 in zip(G.synthesis.blocks, G2.synthesis.blocks):
            assert torch.equal(b1.noise_const1, b2.noise_const1)
    finally:
        with torch.no_grad():
            for blk in G.synthesis.blocks:
                blk.noise1.strength.zero_()
                blk.noise2.strength.zero_()
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, h, noise_mode="fixed")


def test_w_input_return_w_and_path_length_gradient(small):
    cfg, G = small
    z, h = torch.randn(2, cfg.z_dim), random_hist(2, cfg.hist_bins, 1)
    img, w = G(z, h, noise_mode="const", return_w=True)
    torch.testing.assert_close(w, G.mapping(z))
    torch.testing.assert_close(G(None, h, w=w, noise_mode="const"), img)
    torch.testing.assert_close(G(torch.randn(2, cfg.z_dim), h, w=w, noise_mode="const"), img)  # z ignored
    (g,) = torch.autograd.grad((img * torch.randn_like(img)).sum(), w, create_graph=True)
    assert g.shape == w.shape and g.abs().sum() > 0 and g.requires_grad
    # mapping normalises z first: its scale does not matter
    torch.testing.assert_close(G.mapping(3 * z), G.mapping(z))
    with pytest.raises(ValueError, match="z"):
        G(None, h)


def test_truncation_uses_the_tracked_average():
    torch.manual_seed(0)
    cfg = tiny(16, n_hist_blocks=1)
    G = HistoGAN(cfg)
    torch.testing.assert_close(G.mapping.w_avg, torch.zeros(cfg.w_dim))
    z = torch.randn(4, cfg.z_dim)
    w = G.mapping(z, update_w_avg=True)
    torch.testing.assert_close(G.mapping.w_avg, (1 - cfg.w_avg_beta) * w.detach().mean(0))
    h = random_hist(1, cfg.hist_bins, 0).expand(4, -1, -1, -1)
    img = G(z, h, truncation_psi=0.0, noise_mode="const")       # every sample gets w_avg
    torch.testing.assert_close(img, img[:1].expand_as(img))
    _, w_half = G(z, h, truncation_psi=0.5, return_w=True)
    torch.testing.assert_close(w_half, G.mapping.w_avg + 0.5 * (w - G.mapping.w_avg))
    # without update_w_avg the buffer does not move
    before = G.mapping.w_avg.clone()
    G(z, h)
    torch.testing.assert_close(G.mapping.w_avg, before, rtol=0, atol=0)


def test_style_mixing(small):
    cfg, G = small
    z1, z2, h = torch.randn(2, cfg.z_dim), torch.randn(2, cfg.z_dim), random_hist(2, cfg.hist_bins, 1)
    a = G(z1, h, noise_mode="const")
    b = G(z2, h, noise_mode="const")
    torch.testing.assert_close(G(z1, h, mix_z=z2, mix_layer=0, noise_mode="const"), b)
    torch.testing.assert_close(G(z1, h, mix_z=z2, mix_layer=cfg.n_w_blocks, noise_mode="const"), a)
    m = G(z1, h, mix_z=z2, mix_layer=1, noise_mode="const")
    assert not torch.allclose(m, a) and not torch.allclose(m, b)
    with pytest.raises(ValueError, match="mix_layer"):
        G(z1, h, mix_z=z2)
    with pytest.raises(ValueError, match="mix_layer"):
        G(z1, h, mix_z=z2, mix_layer=cfg.n_w_blocks + 1)


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    cfg = tiny(16, n_hist_blocks=1)
    G = HistoGAN(cfg)
    img = G(torch.randn(3, cfg.z_dim), random_hist(3, cfg.hist_bins, 0), noise_mode="random")
    (img * torch.randn_like(img)).sum().backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient"


@pytest.mark.parametrize("impl", ["unfold", "grouped", "scaled"])
def test_generator_output_does_not_depend_on_the_modconv_impl(small, impl):
    cfg, G = small
    z, h = torch.randn(2, cfg.z_dim), random_hist(2, cfg.hist_bins, 1)
    torch.testing.assert_close(G(z, h, noise_mode="const", impl=impl), G(z, h, noise_mode="const", impl="auto"))


def test_bad_inputs_name_the_argument(small):
    cfg, G = small
    with pytest.raises(ValueError, match="hist"):
        G(torch.randn(2, cfg.z_dim), random_hist(2, cfg.hist_bins + 1, 0))
    with pytest.raises(ValueError, match="z"):
        G(torch.randn(2, cfg.z_dim + 1), random_hist(2, cfg.hist_bins, 0))
    with pytest.raises(ValueError, match="config"):
        HistoGAN({"resolution": 64})


def reference_code_param_counts(resolution=256, capacity=16, latent=512, depth=8, bins=64):
    """Parameter counts of the HistoGAN reference code's generator, counted by hand from its layers.

    Generator block (in, out): to_style1 Linear(latent, in), to_noise1 Linear(1, out), conv1 3x3 in->out
    (no bias), to_style2 Linear(latent, out), to_noise2, conv2 out->out, toRGB: Linear(latent, out) + 1x1
    out->3 (no bias). Constant: 4 capacity x 4 x 4. StyleVectorizer: depth x Linear(latent, latent).
    HistVectorizer: Linear(3 bins^2, 2 latent), Linear(2 latent, latent), (depth - 2) x Linear(latent, latent).
    """
    n = resolution.bit_length() - 2
    filters = [4 * capacity] + [capacity * 2 ** (i + 1) for i in range(n)][::-1]
    lin = lambda a, b: a * b + b
    synth = 4 * capacity * 16
    for cin, cout in zip(filters[:-1], filters[1:]):
        synth += lin(latent, cin) + 2 * cout + cin * cout * 9
        synth += lin(latent, cout) + 2 * cout + cout * cout * 9
        synth += lin(latent, cout) + cout * 3
    mapping = depth * lin(latent, latent)
    hist = lin(3 * bins * bins, 2 * latent) + lin(2 * latent, latent) + (depth - 2) * lin(latent, latent)
    return synth, mapping, hist


def test_paper_parameter_counts_match_the_reference_code():
    ref_synth, ref_mapping, ref_hist = reference_code_param_counts()
    with torch.device("meta"):                       # count without allocating 400 MB
        G = HistoGAN(HistoGANConfig.paper())
    count = lambda m: sum(p.numel() for p in m.parameters())
    synth, mapping, hist = count(G.synthesis), count(G.mapping), count(G.hist_projection)
    print(f"\npaper(): synthesis {synth / 1e6:.2f} M (reference code {ref_synth / 1e6:.2f} M), "
          f"mapping {mapping / 1e6:.2f} M ({ref_mapping / 1e6:.2f} M), "
          f"histogram projection {hist / 1e6:.2f} M ({ref_hist / 1e6:.2f} M)")
    assert abs(synth - ref_synth) / ref_synth < 0.001
    assert mapping == ref_mapping and hist == ref_hist
    assert 82e6 < synth < 84e6 and 14.6e6 < hist < 14.8e6
