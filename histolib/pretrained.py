"""Weights the project ships, loaded offline in one line: ``histolib.pretrained.load("toyfaces64")``.

A shipped model is the EMA generator of a training run, stored as **safetensors** (a format
that holds only tensors, so loading it can never run code) in ``histolib/weights/``, with its
``HistoGANConfig`` and how it was trained in the file's metadata.

    python -m histolib.pretrained export runs/toy-toy-64/checkpoints toyfaces64   # make one
    python -m histolib.pretrained list                                           # what ships
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

__all__ = ["load", "available", "info", "export", "WEIGHTS_DIR"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def available() -> list[str]:
    """Names of the shipped models."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors"))


def _path(name: str) -> Path:
    path = WEIGHTS_DIR / f"{name}.safetensors"
    if not path.is_file():
        names = ", ".join(available()) or "none"
        raise ValueError(f"name: no shipped model {name!r}; available: {names}")
    return path


def info(name: str) -> dict:
    """The metadata stored with a shipped model: config, training command, steps, metrics..."""
    from safetensors import safe_open
    with safe_open(str(_path(name)), framework="pt") as f:
        meta = f.metadata() or {}
    return {k: json.loads(v) for k, v in meta.items()}


def load(name: str = "toyfaces64", device=None):
    """The shipped generator ``name`` as a ``HistoGAN`` in eval mode, gradients off.

    Works offline; weights are read with safetensors (tensors only, never code).
    """
    from safetensors.torch import load_file

    from .config import HistoGANConfig
    from .generator import HistoGAN
    from .images import pick_device

    meta = info(name)
    G = HistoGAN(HistoGANConfig.from_dict(meta["model_config"]))
    state = load_file(str(_path(name)))
    G.load_state_dict({k: v.float() for k, v in state.items()})
    return G.eval().requires_grad_(False).to(pick_device(device))


def export(checkpoint, name: str, extra: dict | None = None, dtype=torch.float32) -> Path:
    """Write the EMA generator of a training checkpoint to ``histolib/weights/<name>.safetensors``.

    extra: more JSON-able metadata to store (the training command, wall time, metrics).
    """
    from safetensors.torch import save_file

    from .checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint, required=("format", "model_config", "G_ema"))
    tensors = {k: v.to(dtype).contiguous() if v.is_floating_point() else v.contiguous()
               for k, v in state["G_ema"].items()}
    meta = {"model_config": state["model_config"], "step": state.get("step"), "nimg": state.get("nimg"),
            "train_config": state.get("train_config")}
    meta.update(extra or {})
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    out = WEIGHTS_DIR / f"{name}.safetensors"
    tmp = out.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={k: json.dumps(v) for k, v in meta.items()})
    tmp.replace(out)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m histolib.pretrained", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="ship the EMA generator of a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("name")
    e.add_argument("--meta", default="{}", help="extra metadata as a JSON object")
    sub.add_parser("list", help="list the shipped models")
    args = p.parse_args(argv)
    if args.cmd == "list":
        for n in available():
            m = info(n)
            print(f"{n}: {m['model_config']['resolution']} px, step {m.get('step')}")
        return 0
    out = export(args.checkpoint, args.name, json.loads(args.meta))
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
