"""How fast the shipped generator draws images on a CPU, and what the metrics cost.

    python benchmarks/bench_generate.py            # 7 rounds
    python benchmarks/bench_generate.py --quick    # 3 rounds

Target (issue 5): 64 images at 64 px from ``histolib.pretrained.load("toyfaces64")`` in
under 2 s on the project's CPU, under ``torch.no_grad()`` with ``noise_mode="const"``.
Beside it, in the same run, the same call with autograd on (what a training step pays for
the generator's forward) gives the ratio. Then the metrics of ``histolib.metrics`` at the
sizes ``python -m histolib.evaluate`` uses: ``colour_control`` on 256 targets (it generates
256 images and takes their histograms), ``content_diversity`` (8 targets x 16 latents),
the ideal-recolouring ratio (``ideal_control_ratio``: 256 toy faces drawn and scored),
``sliced_wasserstein`` on 256 vs 256 images, and the RGB-uv histogram of 256 images (G's
32 bins, sigma 0.1).

Timing: interleaved rounds after one warm-up, medians reported (the machine is shared
and noisy). Threads: ``--threads`` (default 1: with other processes on a 2-core machine,
two OpenMP threads wait on each other and run many times slower).

Measured on the project's 2-core CPU (torch 2.14, 1 thread, idle machine, shipped
toyfaces64 at 23,500 steps, 3 rounds, 2026-12-04; content_diversity now compares layout maps):

    case                                       median s   images/s
    generate 64 images, no_grad, const noise      0.282        227
      same, with autograd (training forward)      0.357        179
    colour_control, 256 targets                   1.123        228
    content_diversity, 8 targets x 16 z           0.444        288
    ideal recolouring ratio, 256 faces            0.521        491
    sliced_wasserstein, 256 vs 256 images        28.286         18
    histogram of 256 images                       0.258        991
    -> 64 images in 0.28 s: 7.1x under the 2 s target; autograd on costs 1.27x.

SWD dominates ``python -m histolib.evaluate`` (which runs it twice: generated vs real and
the real-vs-real floor): nearly all of it is ``torch.sort`` along dim 0 of the [32768, 512]
projections (2.5 s each, 24 per call); sorting the contiguous transpose along its last dim
gives the same values in 1.1 s.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from histolib.data import ToyFaces
from histolib.histogram import rgb_uv_histogram
from histolib.images import to_unit
from histolib.evaluate import HELD_OUT_SEED, ideal_control_ratio
from histolib.metrics import colour_control, content_diversity, sliced_wasserstein
from histolib.pretrained import load

TARGET_S = 2.0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="3 rounds")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--name", default="toyfaces64")
    args = p.parse_args(argv)
    rounds = 3 if args.quick else args.rounds
    torch.set_num_threads(args.threads)

    G = load(args.name, device="cpu")
    cfg = G.config
    R, bins, sigma = cfg.resolution, cfg.hist_bins, cfg.hist_sigma
    reals = ToyFaces(size=512, resolution=R, seed=HELD_OUT_SEED).batch(range(512))         # [-1, 1]
    hists256 = rgb_uv_histogram(to_unit(reals[:256]), bins=bins, sigma=sigma)
    z64 = torch.randn(64, cfg.z_dim, generator=torch.Generator().manual_seed(0))
    h64 = hists256[:64]

    def gen_nograd():
        with torch.no_grad():
            G(z64, h64, noise_mode="const")

    def gen_grad():
        z = z64.clone().requires_grad_()
        G(z, h64, noise_mode="const")

    def cc256():
        colour_control(G, hists256)

    def diversity():
        content_diversity(G, hists256[:8], reals[256:])

    def ideal256():
        ideal_control_ratio(hists256, R, sigma)

    def swd256():
        sliced_wasserstein(reals[:256], reals[256:])

    def hist256():
        with torch.no_grad():
            rgb_uv_histogram(to_unit(reals[:256]), bins=bins, sigma=sigma)

    cases = [("generate 64 images, no_grad, const noise", gen_nograd, 64),
             ("  same, with autograd (training forward)", gen_grad, 64),
             ("colour_control, 256 targets", cc256, 256),
             ("content_diversity, 8 targets x 16 z", diversity, 128),
             ("ideal recolouring ratio, 256 faces", ideal256, 256),
             ("sliced_wasserstein, 256 vs 256 images", swd256, 512),
             ("histogram of 256 images", hist256, 256)]
    times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for _, fn, _ in cases:          # warm-up
        fn()
    for _ in range(rounds):
        for name, fn, _ in cases:
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)

    print(f"{args.name}: {R} px, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{rounds} rounds, medians")
    w = max(len(n) for n, _, _ in cases)
    print(f"{'case':<{w}}  {'median s':>9}  {'min s':>7}  {'images/s':>9}")
    print("-" * (w + 32))
    for name, _, n_img in cases:
        med = statistics.median(times[name])
        print(f"{name:<{w}}  {med:9.3f}  {min(times[name]):7.3f}  {n_img / med:9.0f}")
    gen = statistics.median(times[cases[0][0]])
    ratio = statistics.median(times[cases[1][0]]) / gen
    verdict = "meets" if gen < TARGET_S else "MISSES"
    print(f"-> 64 images in {gen:.2f} s: {verdict} the {TARGET_S:.0f} s target ({TARGET_S / gen:.1f}x under it); "
          f"autograd on costs {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
