"""How well does a HistoGAN work? Colour control in numbers, and image quality without a pretrained net.

* **Colour-control error** (what HistoGAN reports): for each target histogram, generate an
  image and measure Hellinger (and KL) between the target and the generated image's histogram.
* **Control ratio**: that error divided by the error when every generated image is compared
  with *another* sample's target (same images, shuffled targets). 1.0 = the histogram has no
  effect; 0 = perfect control. It normalises away how different the targets are to begin with.
* **Content diversity**: for a fixed target, how much the *layouts* of the images for
  different latents z differ, relative to how much real images' layouts differ. Layouts are
  compared colour-blind (``layout_maps``: where a 16 x 16 copy of the image changes, not what
  colour it is), because a fixed target should fix the colours: on raw pixels a perfect
  colour-only model scores only ~0.34 on toy faces, as low as a collapsed generator. A
  generator that has collapsed to one face per target scores near 0: a collapse can lower
  the colour-control error (less varied layouts are easier to colour), so the two are read
  together.
* **Sliced Wasserstein distance** (SWD) on Laplacian-pyramid patches (Karras et al., ProGAN,
  2018): compares the distributions of 7x7 patches of generated and real images at every
  scale; no pretrained network needed. The real-vs-real value on disjoint sets is its floor.
* **FID** through ``torchmetrics`` where it and its Inception weights are available;
  otherwise a clear message saying so (``fid`` returns None).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .histogram import hellinger_distance, kl_divergence, rgb_uv_histogram
from .images import to_unit

__all__ = ["ColourControl", "colour_control", "images_for_targets", "colour_control_of", "content_diversity", "layout_maps", "layout_spread", "sliced_wasserstein", "laplacian_pyramid", "fid", "FIDUnavailable"]


@dataclass(frozen=True)
class ColourControl:
    """Colour-control numbers for one set of targets (means over the images)."""
    hellinger: float            # mean Hellinger(target, hist(generated)), in [0, 1]
    kl: float                   # mean KL(target || hist(generated))
    hellinger_shuffled: float   # the same images against another sample's target
    kl_shuffled: float

    @property
    def ratio(self) -> float:
        """hellinger / hellinger_shuffled: 1 = no control, 0 = perfect."""
        return self.hellinger / self.hellinger_shuffled

    @property
    def kl_ratio(self) -> float:
        return self.kl / self.kl_shuffled


@torch.no_grad()
def colour_control(G, target_hists: torch.Tensor, seed: int = 0, batch_size: int = 32,
                   truncation_psi: float = 1.0, sigma: float | None = None) -> ColourControl:
    """Generate one image per target histogram and measure how closely it follows it.

    G: a HistoGAN (callable as ``G(z, hist, truncation_psi=..., noise_mode=...)``, with ``G.config``).
    target_hists: [N, 3, bins, bins] (N >= 2), e.g. histograms of held-out real images.
    The shuffled comparison pairs generated image i with target (i + 1) mod N.
    """
    if target_hists.ndim != 4 or target_hists.shape[1] != 3 or len(target_hists) < 2:
        raise ValueError(f"target_hists: expected [N >= 2, 3, bins, bins], got {tuple(target_hists.shape)}")
    images = images_for_targets(G, target_hists, seed=seed, batch_size=batch_size, truncation_psi=truncation_psi)
    return colour_control_of(images, target_hists, sigma=G.config.hist_sigma if sigma is None else sigma)


@torch.no_grad()
def images_for_targets(G, target_hists: torch.Tensor, seed: int = 0, batch_size: int = 32,
                       truncation_psi: float = 1.0) -> torch.Tensor:
    """One generated image per target histogram, latents drawn from ``seed``: [N, 3, R, R] on the CPU."""
    device = next(G.parameters()).device
    g = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, len(target_hists), batch_size):
        t = target_hists[start:start + batch_size].to(device)
        z = torch.randn(len(t), G.config.z_dim, generator=g).to(device)
        out.append(G(z, t, truncation_psi=truncation_psi, noise_mode="const").float().cpu())
    return torch.cat(out)


@torch.no_grad()
def colour_control_of(images: torch.Tensor, target_hists: torch.Tensor, sigma: float) -> ColourControl:
    """Colour-control numbers of images already generated for ``target_hists`` (image i for target i).

    images: [N, 3, R, R] in [-1, 1]; target_hists: [N, 3, bins, bins]; sigma: the histogram's kernel width.
    """
    gen = rgb_uv_histogram(to_unit(images.float()), bins=target_hists.shape[-1], sigma=sigma)
    tgt = target_hists.cpu().to(gen.dtype)
    shuffled = tgt.roll(1, dims=0)
    return ColourControl(hellinger=hellinger_distance(tgt, gen).mean().item(),
                         kl=kl_divergence(tgt, gen).mean().item(),
                         hellinger_shuffled=hellinger_distance(shuffled, gen).mean().item(),
                         kl_shuffled=kl_divergence(shuffled, gen).mean().item())


def layout_maps(images: torch.Tensor, size: int = 16) -> torch.Tensor:
    """Where an image changes, not what colour it is: [B, 3, R, R] in [-1, 1] -> [B, size-1, size-1].

    The image (clamped to [-1, 1]) is average-pooled to size x size (coarse enough that pixel
    texture does not count, fine enough for the parts of a face), then the absolute
    differences between horizontal and vertical neighbours are summed over the channels and
    divided by their mean over the image, so a face's map does not depend on how contrasting
    its colours are. A flat image gives an all-zero map.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images: expected [B, 3, R, R], got {tuple(images.shape)}")
    x = F.adaptive_avg_pool2d(images.float().clamp(-1, 1), min(size, images.shape[-1]))
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().sum(1)[..., :-1, :]
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().sum(1)[..., :, :-1]
    edges = dx + dy
    return edges / edges.mean(dim=(-2, -1), keepdim=True).clamp_min(1e-6)


def layout_spread(images: torch.Tensor) -> torch.Tensor:
    """How much the layouts of a set of images [N >= 2, 3, R, R] differ: the standard deviation
    of their ``layout_maps`` over the set, averaged over positions. A 0-d tensor >= 0."""
    return layout_maps(images).std(0).mean()


@torch.no_grad()
def content_diversity(G, target_hists: torch.Tensor, reals: torch.Tensor, n_z: int = 16, seed: int = 0) -> float:
    """How varied G's layouts are for one target, relative to real images' layouts; about 0 = collapsed.

    For each target histogram, ``n_z`` images from different latents; the per-pixel standard
    deviation of their ``layout_maps`` over the latents, averaged over positions and
    targets; divided by the same spread over ``reals`` (different real images). Colour-blind
    on purpose: one fixed target should fix the colours, so only the layout may vary. Real
    toy faces repainted with one target's colours score ~0.87; the shipped toy model 0.69-0.71
    (its 80-kimg weights 0.57); that 80-kimg run pushed on with histogram weight 100-300 at the
    default R1 weight until it made nearly one face per target 0.24-0.42.

    target_hists: [T, 3, bins, bins]; reals: [N >= 2, 3, R, R] in [-1, 1]. Returns a float >= 0.
    """
    if target_hists.ndim != 4 or target_hists.shape[1] != 3 or len(target_hists) < 1:
        raise ValueError(f"target_hists: expected [T >= 1, 3, bins, bins], got {tuple(target_hists.shape)}")
    if reals.ndim != 4 or len(reals) < 2:
        raise ValueError(f"reals: expected [N >= 2, 3, R, R] real images, got {tuple(reals.shape)}")
    if n_z < 2:
        raise ValueError(f"n_z: need at least 2 latents to measure a spread, got {n_z}")
    real_spread = layout_spread(reals)
    if not real_spread > 0:
        raise ValueError("reals: every real image has the same layout, so there is no spread to compare with; "
                         "pass different real images")
    device = next(G.parameters()).device
    z = torch.randn(n_z, G.config.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    spread = []
    for h in target_hists:
        images = G(z, h[None].expand(n_z, -1, -1, -1).to(device), noise_mode="const").float().cpu()
        spread.append(layout_spread(images))
    return (torch.stack(spread).mean() / real_spread).item()


# -- sliced Wasserstein distance on Laplacian-pyramid patches ------------------------------

_GAUSS = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: torch.Tensor) -> torch.Tensor:
    k = (_GAUSS[:, None] * _GAUSS[None, :]).to(x)[None, None].repeat(x.shape[1], 1, 1, 1)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k, groups=x.shape[1])


def laplacian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass levels, finest first, then the low-pass residual: ``levels`` tensors.

    images: [B, C, H, W]. Level i has side H / 2**i.
    """
    out, x = [], images
    for _ in range(levels - 1):
        down = _blur(x)[:, :, ::2, ::2]
        up = F.interpolate(down, scale_factor=2, mode="nearest")
        out.append(x - _blur(up))
        x = down
    out.append(x)
    return out


def _patches(level: torch.Tensor, per_image: int, size: int, g: torch.Generator) -> torch.Tensor:
    """[B * per_image, C * size * size] random patches of one pyramid level."""
    B, C, H, W = level.shape
    ys = torch.randint(0, H - size + 1, (B, per_image), generator=g)
    xs = torch.randint(0, W - size + 1, (B, per_image), generator=g)
    offs = torch.arange(size)
    rows = (ys[..., None] + offs)[..., :, None].expand(-1, -1, size, size)   # [B, P, s, s]
    cols = (xs[..., None] + offs)[..., None, :].expand(-1, -1, size, size)
    b = torch.arange(B)[:, None, None, None].expand_as(rows)
    patches = level.permute(0, 2, 3, 1)[b, rows, cols]                        # [B, P, s, s, C]
    return patches.permute(0, 1, 4, 2, 3).reshape(B * per_image, -1)


def _swd(a: torch.Tensor, b: torch.Tensor, directions: int, repeats: int, g: torch.Generator) -> float:
    results = []
    for _ in range(repeats):
        d = torch.randn(a.shape[1], directions, generator=g, dtype=a.dtype)
        d = d / d.norm(dim=0, keepdim=True)
        # sort each direction's projections along the last (contiguous) dimension: the
        # same values as sorting (a @ d) along dim 0, in less than half the time
        pa, _ = torch.sort((d.T @ a.T).contiguous(), dim=1)
        pb, _ = torch.sort((d.T @ b.T).contiguous(), dim=1)
        results.append((pa - pb).abs().mean().item())
    return sum(results) / len(results)


@torch.no_grad()
def sliced_wasserstein(images_a: torch.Tensor, images_b: torch.Tensor, min_resolution: int = 16,
                       patches_per_image: int = 128, patch_size: int = 7, directions: int = 512,
                       repeats: int = 4, seed: int = 0) -> dict[int, float]:
    """SWD between two image sets, per pyramid level (ProGAN's metric; reported x 1e3).

    images_a, images_b: [N, 3, R, R] in [-1, 1], the same N and R (N >= 2).
    Returns {level side in pixels: SWD x 1e3, ..., "mean": average over levels}.
    Patches are normalised per level and channel with the statistics of both sets together.
    """
    if images_a.shape != images_b.shape or images_a.ndim != 4:
        raise ValueError(f"images_a, images_b: expected two [N, 3, R, R] sets of one shape, "
                         f"got {tuple(images_a.shape)} and {tuple(images_b.shape)}")
    R = images_a.shape[-1]
    levels = max(1, int(math.log2(R // min_resolution)) + 1)
    g = torch.Generator().manual_seed(seed)
    pa = laplacian_pyramid(images_a.float().cpu(), levels)
    pb = laplacian_pyramid(images_b.float().cpu(), levels)
    out: dict = {}
    for la, lb in zip(pa, pb):
        size = min(patch_size, la.shape[-1])
        da, db = _patches(la, patches_per_image, size, g), _patches(lb, patches_per_image, size, g)
        both = torch.cat([da, db]).view(len(da) + len(db), la.shape[1], -1)
        mean = both.mean(dim=(0, 2)).repeat_interleave(size * size)
        std = both.std(dim=(0, 2)).repeat_interleave(size * size).clamp_min(1e-8)
        out[la.shape[-1]] = 1e3 * _swd((da - mean) / std, (db - mean) / std, directions, repeats, g)
    out["mean"] = sum(v for k, v in out.items()) / len(out)
    return out


# -- FID through a library -----------------------------------------------------------------

class FIDUnavailable(RuntimeError):
    """FID cannot be computed here (library or Inception weights missing)."""


def fid(images_a: torch.Tensor, images_b: torch.Tensor) -> float:
    """Fréchet Inception distance via ``torchmetrics`` (needs ``torch-fidelity`` and the
    Inception weights, downloaded on first use). images in [-1, 1].

    Raises FIDUnavailable with a one-line reason where it cannot run (no library, no network
    to fetch the weights); ``python -m histolib.evaluate`` then prints that reason instead.
    """
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
    except Exception as exc:  # ImportError, or torchmetrics without torch-fidelity
        raise FIDUnavailable(f"FID needs torchmetrics and torch-fidelity (pip install torchmetrics torch-fidelity): "
                             f"{type(exc).__name__}") from None
    try:
        metric = FrechetInceptionDistance(feature=2048, normalize=True)
    except Exception as exc:  # weights not downloadable (offline machine)
        raise FIDUnavailable(f"FID's Inception weights are not available here ({type(exc).__name__}); "
                             f"run once with internet access to cache them") from None
    metric.update(to_unit(images_b.float().cpu()), real=True)
    metric.update(to_unit(images_a.float().cpu()), real=False)
    return float(metric.compute())
