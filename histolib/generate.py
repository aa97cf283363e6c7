"""Render images whose colours follow a target image: ``python -m histolib.generate``.

    python -m histolib.generate --checkpoint runs/toy-toy-64/checkpoints \
        --target-image photo.jpg --n 8 --out grid.png

Each target image gives one row: the target (resized) first, then ``n`` images from
fixed latents, coloured by that target's RGB-uv histogram. ``--target-image photo``
uses the sample photo that ships with matplotlib.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .checkpoint import CheckpointError, load_checkpoint
from .config import HistoGANConfig
from .generator import HistoGAN
from .histogram import rgb_uv_histogram
from .images import pick_device, to_signed

__all__ = ["load_generator", "load_target_image", "generate", "main"]


def load_generator(path, ema: bool = True, device=None) -> HistoGAN:
    """The generator of a training checkpoint (its EMA copy by default), in eval mode.

    path: a checkpoint file or a run's checkpoints folder (the newest is taken).
    """
    state = load_checkpoint(path, map_location="cpu", required=("format", "model_config"))
    key = "G_ema" if ema and "G_ema" in state else "G"
    if key not in state:
        raise CheckpointError(f"{path} holds no generator weights")
    G = HistoGAN(HistoGANConfig.from_dict(state["model_config"]))
    G.load_state_dict(state[key])
    return G.eval().requires_grad_(False).to(pick_device(device))


def load_target_image(spec: str, resolution: int | None = None) -> torch.Tensor:
    """A target image as [3, H, W] in [0, 1]: a file path, or ``photo`` for the sample photo."""
    if spec == "photo":
        from .data import sample_photo
        return sample_photo(resolution)
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"target image {spec} does not exist (give an image file, or 'photo')")
    from PIL import UnidentifiedImageError

    from .data import load_image
    try:
        return load_image(path, resolution)
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read target image {spec}: {exc}") from None


@torch.no_grad()
def generate(G: HistoGAN, target_images: torch.Tensor, n: int = 8, seed: int = 0,
             truncation_psi: float = 1.0) -> torch.Tensor:
    """Images for every (target, latent) pair: [T, n, 3, R, R] in [-1, 1].

    target_images: [T, 3, H, W] in [0, 1]; the same n latents (from ``seed``) for every target.
    """
    device = next(G.parameters()).device
    cfg = G.config
    hists = rgb_uv_histogram(target_images.to(device), bins=cfg.hist_bins, sigma=cfg.hist_sigma, max_size=150)
    z = torch.randn(n, cfg.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    rows = [G(z, h[None].expand(n, -1, -1, -1), truncation_psi=truncation_psi, noise_mode="const")
            for h in hists]
    return torch.stack(rows).clamp(-1, 1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m histolib.generate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a training checkpoint, or a run's checkpoints folder")
    p.add_argument("--target-image", action="append", required=True,
                   help="image whose colours to follow ('photo' = the sample photo); repeat for more rows")
    p.add_argument("--n", type=int, default=8, help="images per target")
    p.add_argument("--out", default="grid.png", help="where to write the grid (PNG)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents")
    p.add_argument("--psi", type=float, default=1.0, help="truncation (1 = none, smaller = closer to the average face)")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA copy")
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    if args.n < 1:
        p.error(f"--n must be >= 1, got {args.n}")
    try:
        G = load_generator(args.checkpoint, ema=not args.no_ema, device=args.device)
        R = G.config.resolution
        targets = torch.stack([load_target_image(t, R) for t in args.target_image])
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        p.error(str(exc).splitlines()[0])
    images = generate(G, targets, n=args.n, seed=args.seed, truncation_psi=args.psi)
    grid = torch.cat([torch.cat([to_signed(t)[None].to(row.device), row]) for t, row in zip(targets, images)])
    from torchvision.utils import save_image
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_image(grid.float().cpu(), args.out, nrow=args.n + 1, normalize=True, value_range=(-1, 1))
    print(f"histolib.generate: wrote {args.out} ({len(targets)} targets x {args.n} images at {R} px)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
