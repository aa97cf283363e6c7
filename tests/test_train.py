"""The trainer: accumulation, exact resume, non-finite steps, checkpoints, the CLI, convergence."""
from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from histolib.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from histolib.config import HistoGANConfig
from histolib.data import ToyFaces
from histolib.train import ConfigError, InfiniteBatchSampler, TrainConfig, Trainer, main

ROOT = Path(__file__).resolve().parent.parent

# a tiny model so the tests run in seconds
TINY = HistoGANConfig.toy(resolution=16, capacity=4, max_channels=16, z_dim=16, w_dim=16, mapping_layers=2,
                          hist_bins=16, hist_layers=2, hist_hidden=32, d_capacity=8, d_max_channels=16,
                          mbstd_group=0)


def tiny_trainer(tmp_path, **kw) -> Trainer:
    cfg = dict(batch_size=4, steps=4, log_every=1, sample_every=0, checkpoint_every=0, out_dir=str(tmp_path),
               name="run", r1_interval=2, pl_interval=2, n_sample_z=2, n_sample_targets=2)
    cfg.update(kw)
    return Trainer(TINY, TrainConfig(**cfg), dataset=ToyFaces(size=32, resolution=16))


def weights(tr: Trainer) -> dict:
    out = {}
    for name, net in (("G", tr.G), ("D", tr.D), ("E", tr.G_ema)):
        for k, v in net.state_dict().items():
            out[f"{name}.{k}"] = v.clone()
    return out


# -- configuration -----------------------------------------------------------------------

def test_bad_train_config_names_the_field():
    with pytest.raises(ConfigError, match="micro_batch"):
        TrainConfig(batch_size=6, micro_batch=4)
    with pytest.raises(ConfigError, match="loss"):
        TrainConfig(loss="lsgan")
    with pytest.raises(ConfigError, match="amp"):
        TrainConfig(amp="fp8")


def test_amp_on_cpu_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="CUDA"):
        tiny_trainer(tmp_path, amp="bf16", device="cpu")


def test_resolution_mismatch_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="resolution"):
        Trainer(TINY, TrainConfig(batch_size=4), dataset=ToyFaces(size=8, resolution=32))


def test_config_round_trip():
    cfg = TrainConfig.reference_recipe(batch_size=4)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.loss == "hinge" and cfg.real_gp_weight == 10 and cfg.pl_interval == 32
    # EMA 0.995 per step expressed as a half-life in images at this batch
    assert 0.5 ** (4 / cfg.ema_half_life) == pytest.approx(0.995)


# -- data order --------------------------------------------------------------------------

def test_batch_sampler_resumes_and_shards():
    full = InfiniteBatchSampler(20, 4, seed=3)
    it = iter(full)
    first = [next(it) for _ in range(12)]  # crosses two epoch boundaries (5 batches per epoch)
    resumed = iter(InfiniteBatchSampler(20, 4, seed=3, start=7))
    assert [next(resumed) for _ in range(5)] == first[7:]
    assert sorted(sum(first[:5], [])) == list(range(20))  # one epoch = a permutation
    r0 = next(iter(InfiniteBatchSampler(20, 2, seed=1, rank=0, world=2)))
    r1 = next(iter(InfiniteBatchSampler(20, 2, seed=1, rank=1, world=2)))
    assert not set(r0) & set(r1)
    with pytest.raises(ConfigError, match="fewer than one batch"):
        InfiniteBatchSampler(3, 4)


# -- gradients ---------------------------------------------------------------------------

def _grads(net):
    return {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}


def test_micro_batches_give_the_whole_batch_gradients(tmp_path):
    """Splitting a batch of 8 into micro-batches of 2 gives the same D and G gradients
    (deterministic parts: constant noise inputs, R1 on; path length draws fresh noise per
    micro-batch, so it is left out here)."""
    torch.manual_seed(0)
    real = torch.stack([ToyFaces(size=8, resolution=16)[i] for i in range(8)])
    z = torch.randn(8, TINY.z_dim)
    h = torch.rand(8, 3, TINY.hist_bins, TINY.hist_bins)
    targets = h / h.sum(dim=(1, 2, 3), keepdim=True)
    results = []
    for micro in (None, 2):
        tr = tiny_trainer(tmp_path, batch_size=8, micro_batch=micro)
        tr.noise_mode = "const"
        d_stats = tr.d_backward(real, z, targets, do_reg=True)
        gd = _grads(tr.D)
        g_stats = tr.g_backward(z, targets, do_pl=False)
        gg = _grads(tr.G)
        results.append((gd, gg, d_stats, g_stats))
    (gd1, gg1, d1, g1), (gd2, gg2, d2, g2) = results
    assert gd1.keys() == gd2.keys() and len(gd1) == len(list(tr.D.parameters()))
    # float32 sums in another order: agree to 1e-5 of each tensor's largest entry
    for k in gd1:
        torch.testing.assert_close(gd2[k], gd1[k], rtol=1e-4, atol=1e-5 * gd1[k].abs().max().item(),
                                   msg=f"D grad {k}")
    assert len(gg1) == len([p for p in tr.G.parameters()])
    for k in gg1:
        torch.testing.assert_close(gg2[k], gg1[k], rtol=1e-4, atol=1e-5 * gg1[k].abs().max().item(),
                                   msg=f"G grad {k}")
    assert d1["loss_d"] == pytest.approx(d2["loss_d"], rel=1e-5)
    assert g1["loss_hist"] == pytest.approx(g2["loss_hist"], rel=1e-5)


def test_the_frozen_network_gets_no_gradient(tmp_path):
    tr = tiny_trainer(tmp_path)
    real = torch.stack([tr.dataset[i] for i in range(4)])
    z = torch.randn(4, TINY.z_dim)
    t = torch.full((4, 3, TINY.hist_bins, TINY.hist_bins), 1 / (3 * TINY.hist_bins ** 2))
    tr.d_backward(real, z, t, do_reg=False)
    assert all(p.grad is None for p in tr.G.parameters())
    d_before = _grads(tr.D)
    tr.g_backward(z, t, do_pl=True)  # D is frozen: the G step leaves D's gradients alone
    assert all(p.requires_grad is False for p in tr.D.parameters())
    for k, v in _grads(tr.D).items():
        assert torch.equal(v, d_before[k]), f"G step leaked into D gradient {k}"
    assert all(p.grad is not None for p in tr.G.parameters())
    # zeroing before each backward: D's gradients now are exactly a fresh D step's
    tr.d_backward(real, z, t, do_reg=False)
    g_first = _grads(tr.D)
    tr.d_backward(real, z, t, do_reg=False)
    for k, v in _grads(tr.D).items():
        torch.testing.assert_close(v, g_first[k], rtol=0, atol=0)


# -- exact resume ------------------------------------------------------------------------

def test_resume_is_exact_on_cpu(tmp_path):
    straight = tiny_trainer(tmp_path / "a", steps=6)
    for _ in range(6):
        straight.step()

    first = tiny_trainer(tmp_path / "b", steps=6)
    for _ in range(3):
        first.step()
    path = first.save()
    assert path.name == "step_0000003.pt"
    del first
    resumed = Trainer.resume(path, dataset=ToyFaces(size=32, resolution=16))
    assert resumed.step_count == 3 and resumed.run_dir == tmp_path / "b" / "run"
    for _ in range(3):
        resumed.step()
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    assert torch.equal(straight.pl.pl_mean, resumed.pl.pl_mean)


# -- non-finite steps --------------------------------------------------------------------

def test_non_finite_loss_never_reaches_the_weights(tmp_path, monkeypatch):
    tr = tiny_trainer(tmp_path, checkpoint_every=1, max_bad_steps=3, steps=2)
    tr.train(progress=False)  # writes checkpoints at steps 1 and 2
    good = weights(tr)
    nan_loss = lambda real, fake: (real.sum() + fake.sum()) * float("nan")
    monkeypatch.setattr(tr, "d_loss_fn", nan_loss)
    stats = tr.step()
    assert stats["skipped"] == 1 and tr.bad_steps == 1
    for k, v in weights(tr).items():
        if k.startswith("D."):
            assert torch.equal(v, good[k]), f"{k} changed on a non-finite step"
    # after max_bad_steps in a row the trainer goes back to the last checkpoint
    tr.step(); tr.step()
    assert tr.bad_steps == 3
    tr._recover()
    assert tr.step_count == 2 and tr.bad_steps == 0
    for k, v in weights(tr).items():
        assert torch.equal(v, good[k])
    log = [json.loads(l) for l in (tr.run_dir / "log.jsonl").read_text().splitlines()]
    assert any("reloading" in r.get("event", "") for r in log)


# -- checkpoints -------------------------------------------------------------------------

def test_checkpoints_atomic_pruned_and_safe(tmp_path):
    tr = tiny_trainer(tmp_path, checkpoint_every=1, keep_checkpoints=2, steps=4)
    tr.train(progress=False)
    folder = tr.run_dir / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["step_0000003.pt", "step_0000004.pt"]  # no temp files
    state = load_checkpoint(folder)
    assert state["step"] == 4 and set(state) >= {"G", "D", "G_ema", "opt_g", "opt_d", "rng", "model_config"}
    assert HistoGANConfig.from_dict(state["model_config"]) == TINY
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "broken.pt")
    # a pickle that would run code is refused by weights_only loading
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))
    torch.save({"format": "x", "evil": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_sample_grid_and_log(tmp_path):
    tr = tiny_trainer(tmp_path, sample_every=2, steps=2)
    tr.train(progress=False)
    assert (tr.run_dir / "samples" / "step_0000002.png").is_file()
    rows = [json.loads(l) for l in (tr.run_dir / "log.jsonl").read_text().splitlines()]
    for key in ("d_real", "d_fake", "loss_hist", "fake_min", "fake_max", "r1", "img_s"):
        assert key in rows[0] or key in rows[-1], key
    grid = tr.sample_grid()
    assert grid.shape == (2 * 3, 3, 16, 16)


# -- command line ------------------------------------------------------------------------

def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "histolib.train", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_cli_help_and_bad_configuration(tmp_path):
    out = _cli("--help")
    assert out.returncode == 0 and "--resume" in out.stdout and "torchrun" in out.stdout
    bad = _cli("--batch", "6", "--micro-batch", "4", "--out", str(tmp_path))
    assert bad.returncode == 2 and "micro_batch" in bad.stderr and "Traceback" not in bad.stderr
    missing = _cli("--data", str(tmp_path / "no_such_folder"), "--out", str(tmp_path))
    assert missing.returncode == 2 and "no_such_folder" in missing.stderr and "Traceback" not in missing.stderr
    blocks = _cli("--hist-blocks", "5", "--out", str(tmp_path))
    assert blocks.returncode == 2 and "n_hist_blocks" in blocks.stderr and "Traceback" not in blocks.stderr
    negative = _cli("--range-weight", "-1", "--out", str(tmp_path))
    assert negative.returncode == 2 and "range_weight" in negative.stderr and "Traceback" not in negative.stderr
    negative = _cli("--r1-gamma", "-0.1", "--out", str(tmp_path))
    assert negative.returncode == 2 and "r1_gamma" in negative.stderr and "Traceback" not in negative.stderr
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"xx")
    res = _cli("--resume", str(broken))
    assert res.returncode == 2 and "cannot read" in res.stderr and "Traceback" not in res.stderr


def test_cli_options_reach_the_config_and_may_change_on_resume(tmp_path):
    from histolib.train import _configs_from_args, build_parser
    model, cfg = _configs_from_args(build_parser().parse_args(["--range-weight", "3", "--single-targets",
                                                                "--hist-blocks", "3"]))
    assert cfg.range_weight == 3.0 and cfg.mix_targets is False and model.n_hist_blocks == 3
    model, cfg = _configs_from_args(build_parser().parse_args([]))
    assert cfg.range_weight == TrainConfig.range_weight and cfg.mix_targets is True
    assert model == HistoGANConfig.toy()
    tr = tiny_trainer(tmp_path, steps=1, checkpoint_every=1)
    path = tr.save()
    assert tr.cfg.r1_gamma is None  # the run starts with the default (StyleGAN2-ADA heuristic)
    out = _cli("--resume", str(path), "--steps", "2", "--hist-alpha", "7", "--range-weight", "4", "--single-targets",
               "--r1-gamma", "0.5", "--no-progress")
    assert out.returncode == 0, out.stderr
    state = load_checkpoint(path.parent)
    assert state["step"] == 2
    cfg = TrainConfig.from_dict(state["train_config"])
    assert (cfg.hist_alpha, cfg.range_weight, cfg.mix_targets, cfg.r1_gamma) == (7.0, 4.0, False, 0.5)


# -- it must converge --------------------------------------------------------------------

@pytest.mark.slow
def test_short_run_converges(tmp_path):
    """A shortened version of the convergence run (notebook 07 shows the full one): the toy
    preset at 32 px on toy faces, 1200 steps of batch 8 on the CPU (about 2-3 minutes). No NaN,
    bounded D outputs, generated pixels near [-1, 1], and the Hellinger distance between the
    targets and the generated histograms at most half its starting value."""
    torch.manual_seed(0)
    model = HistoGANConfig.toy(resolution=32)
    cfg = TrainConfig(batch_size=8, steps=1200, hist_alpha=10.0, log_every=10, sample_every=0,
                      checkpoint_every=0, out_dir=str(tmp_path), name="conv")
    tr = Trainer(model, cfg, dataset=ToyFaces(size=5000, resolution=32))
    rows = tr.train(progress=False)
    for r in rows:
        assert all(math.isfinite(r[k]) for k in ("loss_d", "loss_g", "loss_hist")), r
    assert max(abs(r["d_real"]) for r in rows) < 20 and max(abs(r["d_fake"]) for r in rows) < 20
    last = rows[-10:]  # the last 100 steps
    assert min(r["fake_min"] for r in last) > -3 and max(r["fake_max"] for r in last) < 3
    assert sum(r["fake_max"] - r["fake_min"] for r in last) / len(last) < 4  # about [-1, 1] wide, not more
    start = rows[0]["hellinger"]
    end = sum(r["hellinger"] for r in last) / len(last)
    assert end <= 0.5 * start, f"Hellinger {start:.3f} -> {end:.3f}"
