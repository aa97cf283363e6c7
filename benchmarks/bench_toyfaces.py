"""How fast ToyFaces draws faces on ONE core, at 32, 64, 128 and 256 px (target: >= 1,000/s at 64).

    python benchmarks/bench_toyfaces.py            # a few seconds per resolution
    python benchmarks/bench_toyfaces.py --quick    # fewer rounds

Three ways to get faces, measured alternately in the same run (interleaved rounds, medians):

    reference   ``_render_faces(..., fast=False)``: every part on every pixel
    batch       ``ToyFaces.batch(indices)`` (what a DataLoader calls through __getitems__):
                small parts only inside their windows, absent parts skipped
    one-by-one  ``ds[i]`` in a Python loop (a batch of one)

Reported: faces per second of CPU time (``time.process_time``: this machine is shared, and
CPU time is what one core spends), wall-clock faces/s beside it, and the speed-up of
``batch`` over ``reference``. torch and numpy run on one thread.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from histolib.data import ToyFaces, _render_faces  # noqa: E402

torch.set_num_threads(1)


def _measure(fn, n_faces):
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return n_faces / max(time.process_time() - c0, 1e-9), n_faces / max(time.perf_counter() - w0, 1e-9)


def bench(resolution: int, rounds: int) -> dict[str, tuple[float, float]]:
    n = max(16, (256 * 64 * 64) // (resolution * resolution))      # ~the same pixels per round
    ds = ToyFaces(1_000_000, resolution, seed=0)
    ways = {
        "reference": lambda k: _render_faces(ds.uniforms(range(k * n, (k + 1) * n)), resolution, fast=False),
        "batch": lambda k: ds.batch(range(k * n, (k + 1) * n)),
        "one-by-one": lambda k: [ds[i] for i in range(k * n, k * n + max(8, n // 4))],
    }
    sizes = {"reference": n, "batch": n, "one-by-one": max(8, n // 4)}
    for name, fn in ways.items():                                      # warm-up
        fn(rounds + 1)
    results = {name: [] for name in ways}
    for k in range(rounds):
        for name, fn in ways.items():
            results[name].append(_measure(lambda: fn(k), sizes[name]))
    return {name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
            for name, rs in results.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer rounds")
    ap.add_argument("--resolutions", type=int, nargs="+", default=[32, 64, 128, 256])
    args = ap.parse_args()
    rounds = 3 if args.quick else 7
    print(f"ToyFaces, one core, faces/s (CPU time | wall), median of {rounds} interleaved rounds")
    print(f"{'px':>5} {'reference':>18} {'batch':>18} {'one-by-one':>18} {'batch/ref':>10}")
    ok = True
    for r in args.resolutions:
        res = bench(r, rounds)
        cells = " ".join(f"{c:8.0f} |{w:8.0f}" for c, w in (res[k] for k in ("reference", "batch", "one-by-one")))
        print(f"{r:>5} {cells} {res['batch'][0] / res['reference'][0]:9.2f}x", flush=True)
        if r == 64:
            ok = res["batch"][0] >= 1000
    print(f"target >= 1000 faces/s at 64 px on one core (batch, CPU time): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
