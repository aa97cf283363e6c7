"""Print a generator's metrics as a table: ``python -m histolib.evaluate``.

    python -m histolib.evaluate --pretrained toyfaces64          # the shipped model
    python -m histolib.evaluate --checkpoint runs/x/checkpoints   # a training run (EMA generator)

Targets are the histograms of held-out images (toy faces from a seed the training never
used, or a folder you give with --data). See ``histolib.metrics`` for what each number means.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from .histogram import rgb_uv_histogram
from .images import to_unit
from .metrics import (FIDUnavailable, colour_control_of, content_diversity, fid, images_for_targets,
                      layout_spread, sliced_wasserstein)

__all__ = ["evaluate", "format_table", "held_out_images", "ideal_control_ratio", "ideal_diversity", "main"]

HELD_OUT_SEED = 1_000_003  # toy faces from this seed are never seen in training (seed 0 by default)


def held_out_images(n: int, resolution: int, data: str = "toy", offset: int = 0) -> torch.Tensor:
    """[n, 3, R, R] in [-1, 1]: toy faces from an unused seed, or the first n of a folder."""
    from .data import make_dataset
    ds = make_dataset(data, resolution, size=offset + n, seed=HELD_OUT_SEED)
    if len(ds) < offset + n:
        raise ValueError(f"n: the data has {len(ds)} images, fewer than the {offset + n} asked for")
    return torch.stack([ds[offset + i] for i in range(n)])


def ideal_control_ratio(target_hists: torch.Tensor, resolution: int, sigma: float) -> float:
    """The control ratio of a perfect colour-only model on held-out toy faces: the best a
    generator whose layout ignores the histogram could score.

    target_hists: [n, 3, bins, bins], the histograms of ``held_out_images(n, resolution)``
    (faces 0..n-1 of the held-out seed). Face n + i is painted with face i's colours
    (``ToyFaces.recoloured``) and scored against target i like a generated image.
    """
    from .data import ToyFaces
    n = len(target_hists)
    faces = ToyFaces(size=2 * n, resolution=resolution, seed=HELD_OUT_SEED)
    ideal = faces.recoloured(range(n, 2 * n), faces, range(n))
    return colour_control_of(ideal, target_hists, sigma=sigma).ratio


def ideal_diversity(n: int, resolution: int, n_targets: int = 8, n_layouts: int = 16) -> float:
    """``content_diversity`` of a perfect colour-only model on held-out toy faces.

    As ``evaluate`` measures a generator (targets: faces 0..n_targets-1 of the held-out seed;
    reals: faces n..2n-1): each target's colours painted on ``n_layouts`` other faces
    (from face n on) instead of ``n_layouts`` latents. Real layouts, one palette per target.
    """
    from .data import ToyFaces
    faces = ToyFaces(size=max(2 * n, n + n_layouts), resolution=resolution, seed=HELD_OUT_SEED)
    layouts = range(n, n + n_layouts)
    spread = [layout_spread(faces.recoloured(layouts, faces, [t] * n_layouts)) for t in range(n_targets)]
    return (torch.stack(spread).mean() / layout_spread(faces.batch(range(n, 2 * n)))).item()


@torch.no_grad()
def evaluate(G, n: int = 256, data: str = "toy", seed: int = 0, with_fid: bool = True) -> dict:
    """All metrics for generator G on n held-out targets. Returns a dict of numbers/strings."""
    cfg = G.config
    t0 = time.perf_counter()
    reals = held_out_images(2 * n, cfg.resolution, data)
    targets_img, reals_b = reals[:n], reals[n:]
    hists = rgb_uv_histogram(to_unit(targets_img), bins=cfg.hist_bins, sigma=cfg.hist_sigma)
    fakes = images_for_targets(G, hists, seed=seed)          # generated once, for both metrics
    cc = colour_control_of(fakes, hists, sigma=cfg.hist_sigma)
    diversity = content_diversity(G, hists[:8], reals_b, seed=seed)
    fakes = fakes.clamp(-1, 1)
    swd = sliced_wasserstein(fakes, reals_b, seed=seed)
    floor = sliced_wasserstein(targets_img, reals_b, seed=seed)
    out = {"n": n, "hellinger": cc.hellinger, "hellinger_shuffled": cc.hellinger_shuffled, "control_ratio": cc.ratio,
           "kl": cc.kl, "kl_shuffled": cc.kl_shuffled, "kl_ratio": cc.kl_ratio,
           "diversity": diversity, "swd": swd["mean"], "swd_floor": floor["mean"]}
    if data == "toy":
        out["control_ratio_ideal"] = ideal_control_ratio(hists, cfg.resolution, cfg.hist_sigma)
        out["diversity_ideal"] = ideal_diversity(n, cfg.resolution, n_targets=min(8, n))
    if with_fid:
        try:
            out["fid"] = fid(fakes, reals_b)
        except FIDUnavailable as exc:
            out["fid"] = f"n/a: {exc}"
    out["seconds"] = time.perf_counter() - t0
    return out


def format_table(m: dict) -> str:
    rows = [
        ("colour-control error (Hellinger)", f"{m['hellinger']:.4f}", "mean H(target, hist(generated)); 0 = exact"),
        ("  same images, shuffled targets", f"{m['hellinger_shuffled']:.4f}", "what no control would give"),
        ("control ratio (Hellinger)", f"{m['control_ratio']:.3f}", "1 = no control, lower is better"),
        *([("  ideal recolouring", f"{m['control_ratio_ideal']:.3f}",
            "each target's own colours painted on another toy face")] if "control_ratio_ideal" in m else []),
        ("colour-control error (KL)", f"{m['kl']:.4f}", f"shuffled {m['kl_shuffled']:.4f}, ratio {m['kl_ratio']:.3f}"),
        ("content diversity", f"{m['diversity']:.3f}", "layout spread over z for one target / over reals; ~0 = collapsed"),
        *([("  ideal recolouring", f"{m['diversity_ideal']:.3f}",
            "real layouts, each painted with one target's colours")] if "diversity_ideal" in m else []),
        ("SWD x1e3 (generated vs real)", f"{m['swd']:.2f}", "Laplacian-pyramid patches, mean over levels"),
        ("SWD x1e3 floor (real vs real)", f"{m['swd_floor']:.2f}", "the best a generator can do at this n"),
    ]
    if "fid" in m:
        rows.append(("FID", f"{m['fid']:.2f}" if isinstance(m["fid"], float) else "n/a",
                     "" if isinstance(m["fid"], float) else m["fid"][5:]))
    w = max(len(r[0]) for r in rows)
    lines = [f"{'metric':<{w}}  {'value':>8}  note", "-" * (w + 60)]
    lines += [f"{a:<{w}}  {b:>8}  {c}" for a, b, c in rows]
    lines.append(f"({m['n']} held-out targets, {m['seconds']:.1f} s)")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m histolib.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a training checkpoint or a run's checkpoints folder")
    src.add_argument("--pretrained", help="a shipped model name (see python -m histolib.pretrained list)")
    p.add_argument("--n", type=int, default=256, help="held-out targets (and real images for SWD)")
    p.add_argument("--data", default="toy", help="'toy' or a folder of held-out images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-fid", action="store_true")
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    if args.n < 2:
        p.error(f"--n must be >= 2, got {args.n}")
    try:
        if args.pretrained:
            from .pretrained import load
            G = load(args.pretrained, device=args.device)
        else:
            from .generate import load_generator
            G = load_generator(args.checkpoint, device=args.device)
        m = evaluate(G, n=args.n, data=args.data, seed=args.seed, with_fid=not args.no_fid)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        p.error(str(exc).splitlines()[0])
    print(format_table(m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
