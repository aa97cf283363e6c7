"""Speed and memory of the modulated convolution, side by side, at every layer of the presets.

    python benchmarks/bench_modconv.py                    # toy + paper presets, batch 4
    python benchmarks/bench_modconv.py --presets toy      # the toy preset only (~30 s on a CPU)
    python benchmarks/bench_modconv.py --threads 1        # one torch thread (use on a shared CPU)

For every layer (two 3x3 modulated convolutions and one 1x1 toRGB per synthesis
block) and every implementation ("unfold", "grouped", "scaled", "auto") it times a
forward + backward pass (gradients for the input, the weight and the styles) and
measures the peak memory of the tensors the call allocates. The implementations are
timed round-robin, several rounds, keeping each one's fastest round, so a burst of
load on a shared machine hits them all alike. It prints per-layer times, the ratios
the targets are about, and the peak memory:

* "auto" at least 3x faster than "unfold", summed over the toy preset's layers;
* "auto" never more than 10 % slower than the better of "grouped" and "scaled".

Then it times one training iteration of the toy preset's G and D (batch 8), the number
the toy preset was sized by.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated``; on the CPU the running sum
of the bytes each operator allocates and frees (the profiler's memory events, at
operator granularity), i.e. the peak of live tensor memory during the call.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from histolib.config import HistoGANConfig
from histolib.layers import choose_modconv_impl, modulated_conv2d

IMPLS = ("unfold", "grouped", "scaled", "auto")


def layer_shapes(cfg: HistoGANConfig):
    """(name, c_in, c_out, k, side, demodulate) of every modulated convolution of the synthesis network."""
    shapes = []
    c_prev = cfg.g_const_channels
    for res, c in zip(cfg.block_resolutions, cfg.g_channels):
        shapes.append((f"{res}px conv1", c_prev, c, 3, res, True))
        shapes.append((f"{res}px conv2", c, c, 3, res, True))
        shapes.append((f"{res}px toRGB", c, 3, 1, res, False))
        c_prev = c
    return shapes


def make_inputs(batch, c_in, c_out, k, side, device):
    x = torch.randn(batch, c_in, side, side, device=device, requires_grad=True)
    weight = (torch.randn(c_out, c_in, k, k, device=device) / (c_in * k * k) ** 0.5).requires_grad_()
    styles = (1 + torch.randn(batch, c_in, device=device)).requires_grad_()
    up = torch.randn(batch, c_out, side, side, device=device)
    return x, weight, styles, up


def fwd_bwd(impl, x, weight, styles, up, demod):
    y = modulated_conv2d(x, weight, styles, demodulate=demod, impl=impl)
    x.grad = weight.grad = styles.grad = None
    torch.autograd.backward(y, up)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


CLOCK = time.perf_counter


def time_layer(inputs, demod, rounds, device):
    """Seconds per forward + backward of each impl: best of `rounds` rounds, round-robin.

    Each round repeats the call until ~20 ms have passed (at least once), so short calls are
    not dominated by timer resolution and scheduling noise.
    """
    best = {impl: float("inf") for impl in IMPLS}
    reps = {}
    for impl in IMPLS:                                  # warm-up (oneDNN / cuDNN pick their kernels)
        fwd_bwd(impl, *inputs, demod)
        sync(device)
        t0 = CLOCK()
        fwd_bwd(impl, *inputs, demod)
        sync(device)
        reps[impl] = max(1, min(50, int(0.02 / max(CLOCK() - t0, 1e-6))))
    for _ in range(rounds):
        for impl in IMPLS:
            sync(device)
            t0 = CLOCK()
            for _ in range(reps[impl]):
                fwd_bwd(impl, *inputs, demod)
            sync(device)
            best[impl] = min(best[impl], (CLOCK() - t0) / reps[impl])
    return best


def peak_bytes(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    cur = peak = 0
    for e in sorted(prof.events(), key=lambda e: e.time_range.start):
        cur += e.self_cpu_memory_usage
        peak = max(peak, cur)
    return peak


def bench_preset(name, cfg, batch, rounds, device):
    print(f"\n== {name} preset: {cfg.resolution} px, widths {cfg.g_channels}, batch {batch}, "
          f"forward + backward, best of {rounds} rounds ==")
    head = (f"{'layer':<14}{'c_in->c_out':>12}{'k':>3} | " + "".join(f"{i + ' ms':>11}" for i in IMPLS)
            + f" | {'auto picks':>10}{'auto/best':>10}{'unfold/auto':>12} | "
            + "".join(f"{i[:6] + ' MB':>10}" for i in IMPLS))
    print(head)
    print("-" * len(head))
    totals = {impl: 0.0 for impl in IMPLS}
    worst = (0.0, "")
    for lname, c_in, c_out, k, side, demod in layer_shapes(cfg):
        inputs = make_inputs(batch, c_in, c_out, k, side, device)
        t = time_layer(inputs, demod, rounds, device)
        mem = {impl: peak_bytes(lambda: fwd_bwd(impl, *inputs, demod), device) / 2 ** 20 for impl in IMPLS}
        for impl in IMPLS:
            totals[impl] += t[impl]
        best_gs = min(t["grouped"], t["scaled"])
        ratio = t["auto"] / best_gs
        if ratio > worst[0]:
            worst = (ratio, lname)
        picked = choose_modconv_impl(inputs[0], inputs[1])
        print(f"{lname:<14}{f'{c_in}->{c_out}':>12}{k:>3} | " + "".join(f"{t[i] * 1e3:>11.2f}" for i in IMPLS)
              + f" | {picked:>10}{ratio:>10.2f}{t['unfold'] / t['auto']:>12.1f} | "
              + "".join(f"{mem[i]:>10.1f}" for i in IMPLS))
        del inputs
    print("-" * len(head))
    print(f"{'sum':<29} | " + "".join(f"{totals[i] * 1e3:>11.1f}" for i in IMPLS))
    print(f"unfold / auto summed over the layers: {totals['unfold'] / totals['auto']:.1f}x "
          f"(target >= 3x);  scaled / grouped: {totals['scaled'] / totals['grouped']:.2f}")
    print(f"worst auto / best(grouped, scaled) at one layer: {worst[0]:.2f} at {worst[1]} (target <= 1.10)")
    return totals, worst


def bench_toy_iteration(batch, iters, device, resolution=64):
    """Seconds per training iteration of the toy preset: a D step (8 real + 8 fake) and a G step (8 fake)."""
    from histolib.discriminator import Discriminator
    from histolib.generator import HistoGAN

    torch.manual_seed(0)
    cfg = HistoGANConfig.toy(resolution=resolution)
    G, D = HistoGAN(cfg).to(device), Discriminator(cfg).to(device)
    opt_g = torch.optim.Adam(G.parameters(), 2e-3, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), 2e-3, betas=(0.0, 0.99))
    hist = torch.rand(batch, 3, cfg.hist_bins, cfg.hist_bins, device=device)
    hist = hist / hist.sum(dim=(1, 2, 3), keepdim=True)
    real = torch.rand(batch, 3, cfg.resolution, cfg.resolution, device=device) * 2 - 1
    times = []
    for it in range(iters + 2):
        sync(device)
        t0 = CLOCK()
        G.requires_grad_(False)
        D.requires_grad_(True)
        with torch.no_grad():
            fake = G(torch.randn(batch, cfg.z_dim, device=device), hist)
        loss_d = F.softplus(D(fake)).mean() + F.softplus(-D(real)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        G.requires_grad_(True)
        D.requires_grad_(False)
        fake = G(torch.randn(batch, cfg.z_dim, device=device), hist, update_w_avg=True)
        loss_g = F.softplus(-D(fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        sync(device)
        if it >= 2:                                     # the first two warm up oneDNN
            times.append(CLOCK() - t0)
    times.sort()
    med = times[len(times) // 2]
    print(f"toy preset {cfg.resolution} px, batch {batch}: one iteration (D step + G step) "
          f"min {times[0]:.3f} s, median {med:.3f} s  ->  {batch / med:.0f} img/s of training")
    return med


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="toy,paper", help="comma-separated: toy, paper")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=0, help="timing rounds (default: 5 toy, 2 paper)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    ap.add_argument("--clock", choices=["auto", "cpu", "wall"], default="auto",
                    help="cpu: this process's CPU time (robust to other processes on a shared "
                         "machine; exact with --threads 1); wall: elapsed time. auto: cpu on the CPU, wall on CUDA")
    ap.add_argument("--skip-iteration", action="store_true", help="do not time the toy training iteration")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from histolib.images import pick_device
    device = pick_device(args.device)
    global CLOCK
    clock = args.clock if args.clock != "auto" else ("cpu" if device.type == "cpu" else "wall")
    CLOCK = time.process_time if clock == "cpu" else time.perf_counter
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {clock} clock")
    results = {}
    for name in args.presets.split(","):
        cfg = {"toy": HistoGANConfig.toy, "paper": HistoGANConfig.paper}[name.strip()]()
        rounds = args.rounds or (5 if name == "toy" else 2)
        results[name] = bench_preset(name, cfg, args.batch, rounds, device)
    if not args.skip_iteration:
        print()
        bench_toy_iteration(8, 8, device)
        bench_toy_iteration(8, 8, device, resolution=32)
    return results


if __name__ == "__main__":
    main()
