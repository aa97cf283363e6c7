"""Speed and memory of one training iteration (D step + G step with the histogram loss).

    python benchmarks/bench_train.py            # all settings (the 256 px one takes minutes on a CPU)
    python benchmarks/bench_train.py --quick    # skip the paper preset at 256 px

Settings (batch = images per iteration):
  toy-64        the toy preset at 64 px, batch 8 (what the notebooks and the CLI default train)
  compare-64    the paper preset's widths at 64 px (512, 256, 128, 64, 32; 23 M parameters), batch 4:
                the setting in which the HistoGAN authors' code was timed on this machine
  paper-256     the paper preset at 256 px, batch 4

Each setting runs in its own process (so peak memory is its own) and reports the time of a
plain iteration, of one with R1 (every 16) and of one with path length (every 4), and the
amortised images/s with the penalties at their lazy intervals. For compare-64 it also runs,
side by side in the same process, the same model with the fold/unfold modulated
convolution (the student write-up's route) and prints the ratio; and it prints the ratio
to the authors' code's figure measured on this machine (0.76 s per plain iteration,
5.2 img/s; 1.49 s with its penalties), which cannot be re-run here.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

AUTHORS_PLAIN_S = 0.76   # their plain iteration, comparison setting, this machine (issue 4)
AUTHORS_PENALTY_S = 1.49  # their iteration with gradient penalty and path length


def _median_time(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def measure(setting: str, impl: str, repeat: int) -> dict:
    import torch
    from histolib.config import HistoGANConfig
    from histolib.data import ToyFaces
    from histolib.train import TrainConfig, Trainer

    model, batch = {
        "toy-64": (HistoGANConfig.toy(), 8),
        "compare-64": (HistoGANConfig.paper(resolution=64), 4),
        "paper-256": (HistoGANConfig.paper(), 4),
    }[setting]
    tr = Trainer(model, TrainConfig(batch_size=batch, r1_interval=16, pl_interval=4, checkpoint_every=0,
                                    log_every=0, sample_every=0, device="cpu"),
                 dataset=ToyFaces(size=64, resolution=model.resolution))
    tr.G.impl = impl

    def at(step):
        def run():
            tr.step_count = step  # selects which lazy penalties this iteration runs
            tr.step()
        return run
    plain = _median_time(at(1), repeat)       # 1 % 16 and 1 % 4 != 0: no penalty
    with_pl = _median_time(at(4), repeat)     # path length only
    with_both = _median_time(at(16), repeat)  # R1 and path length
    amortised = plain + (with_pl - plain) / 4 + (with_both - with_pl) / 16
    return {"setting": setting, "impl": impl, "batch": batch,
            "g_params_M": sum(p.numel() for p in tr.G.parameters()) / 1e6,
            "d_params_M": sum(p.numel() for p in tr.D.parameters()) / 1e6,
            "plain_s": plain, "pl_s": with_pl, "r1_pl_s": with_both, "amortised_s": amortised,
            "img_s": batch / amortised, "peak_rss_GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "threads": torch.get_num_threads()}


def run_in_subprocess(setting, impl, repeat):
    out = subprocess.run([sys.executable, __file__, "--child", setting, impl, str(repeat)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="skip paper-256")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        setting, impl, repeat = args.child
        print(json.dumps(measure(setting, impl, int(repeat))))
        return
    jobs = [("toy-64", "auto"), ("compare-64", "auto"), ("compare-64", "unfold")]
    if not args.quick:
        jobs.append(("paper-256", "auto"))
    rows = []
    # interleave the side-by-side pair twice so a noisy neighbour hurts both alike
    for setting, impl in jobs + [("compare-64", "auto"), ("compare-64", "unfold")]:
        r = run_in_subprocess(setting, impl, args.repeat if setting != "paper-256" else 1)
        rows.append(r)
    print(f"{'setting':<11} {'impl':<7} {'batch':>5} {'G M':>6} {'D M':>6} {'plain s':>8} {'+PL s':>7} "
          f"{'+R1+PL s':>9} {'amort. s':>9} {'img/s':>7} {'peak GB':>8}")
    for r in rows:
        print(f"{r['setting']:<11} {r['impl']:<7} {r['batch']:>5} {r['g_params_M']:>6.1f} {r['d_params_M']:>6.1f} "
              f"{r['plain_s']:>8.3f} {r['pl_s']:>7.3f} {r['r1_pl_s']:>9.3f} {r['amortised_s']:>9.3f} "
              f"{r['img_s']:>7.1f} {r['peak_rss_GB']:>8.2f}")

    def best(setting, impl):
        return min((r for r in rows if r["setting"] == setting and r["impl"] == impl), key=lambda r: r["amortised_s"])
    auto, unfold = best("compare-64", "auto"), best("compare-64", "unfold")
    print()
    print(f"compare-64, side by side: auto is {unfold['amortised_s'] / auto['amortised_s']:.2f}x faster than "
          f"the fold/unfold modulated convolution (amortised iteration)")
    authors_img_s = 4 / AUTHORS_PLAIN_S
    print(f"compare-64 vs the authors' code (their figure on this machine, {authors_img_s:.1f} img/s plain, "
          f"{4 / AUTHORS_PENALTY_S:.1f} img/s with penalties): ours {auto['img_s']:.1f} img/s amortised "
          f"with penalties = {auto['img_s'] / authors_img_s:.2f}x their plain img/s "
          f"(target >= 2x); plain iteration {AUTHORS_PLAIN_S / auto['plain_s']:.2f}x")


if __name__ == "__main__":
    main()
