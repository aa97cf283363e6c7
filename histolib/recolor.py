"""Recolour an image by gradient descent on its pixels until its histogram matches a target.

Because :func:`histolib.histogram.rgb_uv_histogram` is differentiable, the Hellinger
distance between an image's histogram and a target histogram can be minimised over the
pixels themselves - no network involved. It is the histogram loss of HistoGAN, with the
generator replaced by the pixels: a direct way to see what that loss asks for.

The pixels are optimised through a sigmoid, x = sigmoid(z), so they always stay in
[0, 1] (a clamped pixel would get no gradient and stick). Adam moves every image of the
batch independently (the loss is a sum over the batch).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .histogram import hellinger_distance, rgb_uv_histogram

__all__ = ["RecolorResult", "recolor"]


@dataclass
class RecolorResult:
    """images: [B, 3, H, W] in [0, 1], the recoloured images (same shape as the input):
    for each image the iterate with the lowest distance to its target.
    losses: [steps + 1, B], the Hellinger distance to the target per step (row 0: before
    the first step). best_step: [B], the step whose pixels ``images`` holds."""

    images: torch.Tensor
    losses: torch.Tensor
    best_step: torch.Tensor


def recolor(images: torch.Tensor, target: torch.Tensor, steps: int = 150, lr: float = 0.05,
            bins: int | None = None, sigma: float = 0.02, kernel: str = "inverse-quadratic",
            smoothness: float = 0.0, callback: Callable[[int, torch.Tensor], None] | None = None) -> RecolorResult:
    """Move the pixels of ``images`` until their RGB-uv histogram matches ``target``.

    images: [B, 3, H, W] or [3, H, W] in [0, 1] (the starting point; not modified).
    target: [B, 3, bins, bins] or [3, bins, bins] histograms (broadcast over the batch).
    steps: Adam steps; lr: Adam learning rate in logit space (0.05 moves a mid-grey
        pixel by about 0.01 per step).
    bins: defaults to the target's bin count; sigma, kernel: as in ``rgb_uv_histogram``
        (a soft kernel is needed: "hard" has no gradient with respect to colour).
    smoothness: weight of a total-variation penalty on the CHANGE (x - x0): neighbouring
        pixels are encouraged to change colour together, so regions are recoloured as a
        whole instead of speckled. 0 (the default) is the plain histogram loss.
    callback: called as ``callback(step, distances [B])`` after every step.

    Returns a :class:`RecolorResult` (images in [0, 1], shape of the input: per image the
    step with the lowest distance - Adam steps by about ``lr`` whatever the gradient's
    size, so near the optimum it jitters, and an image already at its target would
    otherwise drift; the loss curve [steps + 1, B]: the Hellinger distance alone). Deterministic: no randomness is involved.
    """
    if not isinstance(images, torch.Tensor) or images.ndim not in (3, 4) or images.shape[-3] != 3:
        raise ValueError(f"images: expected [B, 3, H, W] or [3, H, W] in [0, 1], got {getattr(images, 'shape', images)}")
    if not isinstance(target, torch.Tensor) or target.ndim not in (3, 4) or target.shape[-3] != 3 \
            or target.shape[-1] != target.shape[-2]:
        raise ValueError(f"target: expected histograms [B, 3, bins, bins] or [3, bins, bins], "
                         f"got {getattr(target, 'shape', target)}")
    if kernel == "hard":
        raise ValueError("kernel: 'hard' has no gradient with respect to colour; use 'inverse-quadratic' or 'gaussian'")
    if not (isinstance(steps, int) and steps >= 0):
        raise ValueError(f"steps: expected an integer >= 0, got {steps!r}")
    single = images.ndim == 3
    x0 = (images[None] if single else images).detach()
    bins = target.shape[-1] if bins is None else bins
    if bins != target.shape[-1]:
        raise ValueError(f"bins: {bins} does not match the target's {target.shape[-1]} bins")
    target = target.detach().to(x0.dtype)

    eps = 1e-3                              # keep the start away from sigmoid's flat ends
    z = torch.logit(x0.clamp(eps, 1 - eps)).requires_grad_()
    opt = torch.optim.Adam([z], lr=lr)
    losses = []
    best = torch.sigmoid(z).detach().clone()
    best_dist = torch.full((x0.shape[0],), float("inf"), dtype=x0.dtype)
    best_step = torch.zeros(x0.shape[0], dtype=torch.long)
    with torch.enable_grad():
        for step in range(steps + 1):
            x = torch.sigmoid(z)
            hist = rgb_uv_histogram(x, bins=bins, sigma=sigma, kernel=kernel)
            dist = hellinger_distance(target, hist)                        # [B]
            losses.append(dist.detach())
            better = dist.detach() < best_dist
            best[better] = x.detach()[better]
            best_dist = torch.where(better, dist.detach(), best_dist)
            best_step[better] = step
            if step == steps:
                break
            loss = dist.sum()
            if smoothness:
                change = torch.sigmoid(z) - x0
                tv = (change.diff(dim=-1).abs().mean((1, 2, 3)) + change.diff(dim=-2).abs().mean((1, 2, 3)))
                loss = loss + smoothness * tv.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if callback is not None:
                callback(step, dist.detach())
    return RecolorResult(images=best[0] if single else best, losses=torch.stack(losses), best_step=best_step)
