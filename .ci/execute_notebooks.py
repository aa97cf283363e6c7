"""Execute notebooks in place, top to bottom, and leave them clean for committing.

    python .ci/execute_notebooks.py notebooks/*.ipynb            # full teaching settings
    python .ci/execute_notebooks.py --quick notebooks/01_*.ipynb # HISTOLIB_QUICK=1

Clean means: every code cell executed in order (counts 1, 2, 3, ...), kernel
``python3``, no widget state stored in the metadata. `make notebooks` calls this;
tests/test_notebooks_clean.py checks the result.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def clean(nb: nbformat.NotebookNode) -> None:
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    for cell in nb.cells:
        cell.metadata.pop("execution", None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--quick", action="store_true", help="run with HISTOLIB_QUICK=1 (not for committing)")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = ap.parse_args(argv)
    if args.quick:
        os.environ["HISTOLIB_QUICK"] = "1"
    else:
        os.environ.pop("HISTOLIB_QUICK", None)
    status = 0
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        t0 = time.perf_counter()
        client = NotebookClient(nb, timeout=args.timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute()
        except Exception as exc:  # keep the partial outputs so the error is visible
            print(f"FAILED {path}: {type(exc).__name__}: {str(exc).splitlines()[-1] if str(exc) else ''}")
            status = 1
        clean(nb)
        nbformat.write(nb, path)
        print(f"{path}: {time.perf_counter() - t0:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
