"""Speed and peak memory of the RGB-uv histogram: fast path vs the reference code's way.

    python benchmarks/bench_histogram.py            # batch 16 at 64 px and 150 px
    python benchmarks/bench_histogram.py --quick    # fewer rounds

The reference is ``histolib.histogram.rgb_uv_histogram_reference``: one image at a time,
float64 distance and kernel matrices kept by autograd, exactly as the authors' block
(notebook 01 builds it from scratch). The fast path is ``rgb_uv_histogram``.

Time: the two versions run alternately (interleaved rounds, one warm-up each) and we
report medians, because this machine is shared and noisy. "forward" is the forward pass
with the images requiring grad (as in training); "fwd+bwd" adds the backward pass.
Peak memory: each (version, size) runs forward+backward once in a fresh subprocess,
after a tiny warm-up and ``malloc_trim``; peak = high-water RSS during the call (reset
through /proc/self/clear_refs) minus RSS just before it. Targets (issue 6): fast at
least 2.5x faster for fwd+bwd at both sizes, with at most 1/4 of the reference peak;
and the fast path alone at batch 16, 256 x 256 under 2 GB.

Measured on the project's 2-core CPU machine (torch 2.14, 2 threads, a quiet moment):

      size | version   | forward s | fwd+bwd s | peak MB
      64px | reference |     0.134 |     0.329 |    1166
      64px | fast      |     0.016 |     0.056 |      12
     150px | reference |     1.380 |     1.993 |    6390
     150px | fast      |     0.088 |     0.286 |      33
    -> 5.8x (64 px) and 7.0x (150 px) faster forward+backward, 1/100 and 1/191 of the
       peak memory; 86 MB at 256 px. With --threads 1 on a loaded machine: 6.1x and 8.0x.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import subprocess
import sys
import threading
import time

import torch

from histolib.histogram import rgb_uv_histogram, rgb_uv_histogram_reference

VERSIONS = {"reference": rgb_uv_histogram_reference, "fast": rgb_uv_histogram}


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def _trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def peak_memory_mb(version: str, batch: int, px: int) -> float:
    """Extra resident memory (MB) at the peak of one forward+backward call."""
    fn = VERSIONS[version]
    small = torch.rand(1, 3, 8, 8, requires_grad=True)
    fn(small).sum().backward()                       # load kernels / thread pools first
    x = torch.rand(batch, 3, px, px).requires_grad_()
    target = torch.rand(batch, 3, 64, 64)
    _trim()
    base = _status_kb("VmRSS")
    try:                                              # exact high-water mark
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        sampler = None
    except OSError:                                   # fall back to sampling every 1 ms
        peak = [base]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], _status_kb("VmRSS"))
                time.sleep(0.001)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
    (fn(x) * target).sum().backward()
    if sampler is None:
        top = _status_kb("VmHWM")
    else:
        stop.set()
        sampler.join()
        top = peak[0]
    return (top - base) / 1024


def time_once(fn, x, target, backward: bool) -> float:
    xx = x.clone().requires_grad_()
    t0 = time.perf_counter()
    h = fn(xx)
    if backward:
        (h * target).sum().backward()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 rounds instead of 5")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 150])
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: torch's choice); 1 is steadier on a busy shared machine")
    ap.add_argument("--memory-child", nargs=3, metavar=("VERSION", "BATCH", "PX"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        v, b, px = args.memory_child
        print(json.dumps(peak_memory_mb(v, int(b), int(px))))
        return 0

    rounds = 2 if args.quick else 5
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, {rounds} rounds (medians)")
    rows, ok = [], True
    for px in args.sizes:
        x = torch.rand(args.batch, 3, px, px)
        target = torch.rand(args.batch, 3, 64, 64)
        times = {(v, bw): [] for v in VERSIONS for bw in (False, True)}
        for v, fn in VERSIONS.items():                # warm-up
            time_once(fn, x, target, True)
        for _ in range(rounds):                        # interleaved: ref, fast, ref, fast, ...
            for bw in (False, True):
                for v, fn in VERSIONS.items():
                    times[(v, bw)].append(time_once(fn, x, target, bw))
        med = {k: statistics.median(t) for k, t in times.items()}
        mem = {}
        for v in VERSIONS:
            cmd = [sys.executable, __file__, "--memory-child", v, str(args.batch), str(px)]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            out = subprocess.run(cmd,
                                 capture_output=True, text=True, check=True)
            mem[v] = float(out.stdout.strip().splitlines()[-1])
        speed_fb = med[("reference", True)] / med[("fast", True)]
        speed_f = med[("reference", False)] / med[("fast", False)]
        mem_ratio = mem["reference"] / max(mem["fast"], 1e-3)
        ok &= speed_fb >= 2.5 and mem_ratio >= 4
        rows.append((px, med, mem, speed_f, speed_fb, mem_ratio))

    print()
    print(f"{'size':>6} | {'version':>9} | {'forward s':>9} | {'fwd+bwd s':>9} | {'peak MB':>8}")
    for px, med, mem, *_ in rows:
        for v in VERSIONS:
            print(f"{px:>4}px | {v:>9} | {med[(v, False)]:9.3f} | {med[(v, True)]:9.3f} | {mem[v]:8.0f}")
    print()
    for px, med, mem, speed_f, speed_fb, mem_ratio in rows:
        print(f"{px:>4}px: fast is {speed_f:5.1f}x faster (forward), {speed_fb:5.1f}x faster (fwd+bwd), "
              f"uses 1/{mem_ratio:.0f} of the reference peak memory")
    # the memory bound of issue 6: batch 16 at 256 x 256, no resizing, under 2 GB
    cmd = [sys.executable, __file__, "--memory-child", "fast", str(args.batch), "256"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    mem256 = float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    ok &= mem256 < 2048
    print(f" 256px: fast path peak {mem256:.0f} MB for forward+backward (bound: 2048 MB; the reference "
          f"would need about {rows[-1][2]['reference'] * (256 / rows[-1][0]) ** 2 / 1024:.0f} GB)")
    print("targets (>= 2.5x faster fwd+bwd, <= 1/4 peak memory, < 2 GB at 256 px):", "MET" if ok else "NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
