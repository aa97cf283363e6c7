"""Rendering and shipping a trained generator: generate CLI, safetensors export/load, evaluate CLI."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from PIL import Image

import histolib.pretrained as pretrained
from histolib.config import HistoGANConfig
from histolib.data import ToyFaces
from histolib.generate import generate, load_generator, load_target_image
from histolib.train import TrainConfig, Trainer

TINY = HistoGANConfig.toy(resolution=16, capacity=4, max_channels=16, z_dim=16, w_dim=16, mapping_layers=2,
                          hist_bins=16, hist_layers=2, hist_hidden=32, d_capacity=8, d_max_channels=16,
                          mbstd_group=0)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gen")
    tr = Trainer(TINY, TrainConfig(batch_size=4, steps=2, checkpoint_every=2, sample_every=0, log_every=0,
                                   out_dir=str(tmp), name="r"), dataset=ToyFaces(size=16, resolution=16))
    tr.train(progress=False)
    return tr


def test_load_generator_is_the_ema(run):
    G = load_generator(run.run_dir / "checkpoints")
    for (k, a), b in zip(G.state_dict().items(), run.G_ema.state_dict().values()):
        assert torch.equal(a, b), k
    assert not G.training and not any(p.requires_grad for p in G.parameters())


def test_generate_follows_each_target(run, tmp_path):
    G = load_generator(run.run_dir / "checkpoints")
    targets = torch.stack([load_target_image("photo", 16), torch.rand(3, 16, 16)])
    out = generate(G, targets, n=3, seed=1)
    assert out.shape == (2, 3, 3, 16, 16) and out.abs().max() <= 1
    torch.testing.assert_close(generate(G, targets, n=3, seed=1), out)  # reproducible
    assert not torch.equal(out[0], out[1])  # a different target changes the images


def test_generate_cli(run, tmp_path):
    img = tmp_path / "target.png"
    Image.new("RGB", (40, 30), (200, 40, 40)).save(img)
    out = tmp_path / "grid.png"
    r = subprocess.run([sys.executable, "-m", "histolib.generate", "--checkpoint", str(run.run_dir / "checkpoints"),
                        "--target-image", str(img), "--target-image", "photo", "--n", "4", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    w, h = Image.open(out).size
    assert (w, h) == (2 + 5 * 18, 2 + 2 * 18)  # 5 columns (target + 4), 2 rows, 2-px padding
    bad = subprocess.run([sys.executable, "-m", "histolib.generate", "--checkpoint", str(run.run_dir / "checkpoints"),
                          "--target-image", str(tmp_path / "missing.jpg")], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "missing.jpg" in bad.stderr and "Traceback" not in bad.stderr


def test_export_and_load_round_trip(run, tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    path = pretrained.export(run.run_dir / "checkpoints", "tiny", extra={"command": "test"})
    assert path.suffix == ".safetensors" and pretrained.available() == ["tiny"]
    meta = pretrained.info("tiny")
    assert meta["command"] == "test" and meta["step"] == 2
    G = pretrained.load("tiny", device="cpu")
    z = torch.randn(2, TINY.z_dim)
    h = torch.full((2, 3, 16, 16), 1 / (3 * 256))
    torch.testing.assert_close(G(z, h, noise_mode="const"), run.G_ema(z, h, noise_mode="const"))
    with pytest.raises(ValueError, match="no shipped model"):
        pretrained.load("nope")


def test_evaluate_cli_on_a_checkpoint(run):
    r = subprocess.run([sys.executable, "-m", "histolib.evaluate", "--checkpoint", str(run.run_dir / "checkpoints"),
                        "--n", "8"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "control ratio" in r.stdout and "SWD" in r.stdout and "FID" in r.stdout
    assert "ideal recolouring" in r.stdout and "content diversity" in r.stdout


def test_ideal_recolouring_ratio_is_an_independent_computation(run):
    """evaluate's ideal ratio: target face i's colours on face n + i, scored like a generator."""
    from histolib.data import ToyFaces
    from histolib.evaluate import HELD_OUT_SEED, evaluate
    from histolib.generate import load_generator
    from histolib.histogram import hellinger_distance, rgb_uv_histogram
    G = load_generator(run.run_dir / "checkpoints")
    n, c = 8, G.config
    m = evaluate(G, n=n, with_fid=False)
    faces = ToyFaces(size=2 * n, resolution=c.resolution, seed=HELD_OUT_SEED)
    hist = lambda x: rgb_uv_histogram((x + 1) / 2, bins=c.hist_bins, sigma=c.hist_sigma)
    targets = hist(faces.batch(range(n)))
    made = hist(faces.recoloured(range(n, 2 * n), faces, range(n)))
    expected = hellinger_distance(targets, made).mean() / hellinger_distance(targets.roll(1, 0), made).mean()
    assert m["control_ratio_ideal"] == pytest.approx(expected.item(), rel=1e-5)
    assert m["control_ratio_ideal"] < 0.5
    # its content diversity: 16 other real layouts (faces n ..) in each of the first 8 targets' colours,
    # their layout spread against that of evaluate's reals (faces n .. 2n - 1)
    from histolib.metrics import layout_maps
    many = ToyFaces(size=n + 16, resolution=c.resolution, seed=HELD_OUT_SEED)
    spread = torch.stack([layout_maps(many.recoloured(range(n, n + 16), many, [t] * 16)).std(0).mean()
                          for t in range(8)]).mean()
    expected = spread / layout_maps(many.batch(range(n, 2 * n))).std(0).mean()
    assert m["diversity_ideal"] == pytest.approx(expected.item(), rel=1e-5)
    assert 0.6 < m["diversity_ideal"] < 1.2  # real layouts vary about as much as real faces do


def test_load_target_image_matches_an_independent_decode(tmp_path):
    """A 40x30 RGBA picture: composited on white, centre-cropped to 30x30, resized."""
    import numpy as np
    rgba = np.zeros((30, 40, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 0   # fully transparent: white after compositing
    rgba[:, 5:35, 3] = 255  # the centre 30 columns opaque red
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    img = load_target_image(str(tmp_path / "t.png"), 16)
    assert img.shape == (3, 16, 16) and 0 <= img.min() and img.max() <= 1
    torch.testing.assert_close(img, torch.tensor([1.0, 0.0, 0.0])[:, None, None].expand(3, 16, 16))
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read target image"):
        load_target_image(str(tmp_path / "bad.jpg"), 16)
