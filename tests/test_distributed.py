"""Multi-process training through torchrun, on the CPU with two gloo processes:
the CLI runs, weights stay identical across ranks, only rank 0 writes, and the run resumes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent


def _torchrun(*args, tmp):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(HERE / "_ddp_worker.py"), str(tmp), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def _load(path):
    return torch.load(path, weights_only=True)


@pytest.mark.slow
def test_two_gloo_processes_stay_identical_and_resume(tmp_path):
    common = ["--resolution", "16", "--batch", "4", "--data-size", "64", "--out", str(tmp_path),
              "--name", "ddp", "--log-every", "1", "--sample-every", "0", "--checkpoint-every", "3",
              "--no-progress", "--device", "cpu"]
    run = _torchrun(*common, "--steps", "3", tmp=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    r0, r1 = _load(tmp_path / "rank0_step3.pt"), _load(tmp_path / "rank1_step3.pt")
    assert r0.keys() == r1.keys()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), f"{k} differs between ranks"
    # rank 0 alone writes the log and checkpoints
    ckpts = sorted(p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir())
    assert ckpts == ["step_0000003.pt"]
    log = (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()
    assert len(log) == 3  # one row per step, not one per rank
    # the weights moved: training happened
    init = torch.load(tmp_path / "ddp" / "checkpoints" / "step_0000003.pt", weights_only=True)
    assert init["step"] == 3 and init["nimg"] == 12

    resumed = _torchrun("--resume", str(tmp_path / "ddp" / "checkpoints"), "--steps", "5",
                        "--no-progress", "--device", "cpu", tmp=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    s0, s1 = _load(tmp_path / "rank0_step5.pt"), _load(tmp_path / "rank1_step5.pt")
    for k in s0:
        assert torch.equal(s0[k], s1[k]), f"{k} differs between ranks after resume"
    assert any(not torch.equal(s0[k], r0[k]) for k in s0 if k.startswith("G."))
    final = torch.load(tmp_path / "ddp" / "checkpoints" / "step_0000005.pt", weights_only=True)
    assert final["step"] == 5 and final["nimg"] == 20
