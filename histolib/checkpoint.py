"""Checkpoints: written atomically, loaded safely, the last N kept.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so it loads
with ``torch.load(..., weights_only=True)``: nothing in a file is ever unpickled as code.
It is written to a temporary file in the same folder, flushed to disk, then renamed over
the target, so a crash mid-write never leaves a broken ``last.pt`` behind.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import torch

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "prune_checkpoints", "latest_checkpoint"]


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or not one of histolib's."""


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu", required=("format",)) -> dict:
    """Load a checkpoint with ``weights_only=True``; a clear ``CheckpointError`` when it cannot.

    required: keys the file must hold (histolib checkpoints carry ``format``).
    """
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise CheckpointError(f"no checkpoint (*.pt) in folder {path}")
        path = found
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated file, not a torch file, or pickled code
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {first[:200]}") from None
    if not isinstance(state, dict) or any(k not in state for k in required):
        raise CheckpointError(f"{path} is not a histolib checkpoint (missing {', '.join(required)})")
    return state


_STEP = re.compile(r"step_(\d+)\.pt$")


def _numbered(folder: Path) -> list[tuple[int, Path]]:
    return sorted((int(m.group(1)), p) for p in folder.glob("step_*.pt") if (m := _STEP.search(p.name)))


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The newest ``step_*.pt`` in ``folder`` (or ``last.pt``), or None."""
    folder = Path(folder)
    numbered = _numbered(folder)
    if numbered:
        return numbered[-1][1]
    last = folder / "last.pt"
    return last if last.is_file() else None


def prune_checkpoints(folder: str | os.PathLike, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` ``step_*.pt`` files; returns what was deleted."""
    numbered = _numbered(Path(folder))
    doomed = [p for _, p in numbered[:-keep]] if keep > 0 else []
    for p in doomed:
        p.unlink(missing_ok=True)
    return doomed
