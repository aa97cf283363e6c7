"""The RGB-uv colour histogram of HistoGAN (paper Eq. 2-3), its distances and training targets.

An image in [0, 1] becomes a [3, bins, bins] histogram: for each channel c in (R, G, B)
the pixels are placed in a 2-D log-chroma plane relative to the other two channels,

    R: u = log(R + eps) - log(G + eps),   v = log(R + eps) - log(B + eps)
    G: u = log(G + eps) - log(R + eps),   v = log(G + eps) - log(B + eps)
    B: u = log(B + eps) - log(R + eps),   v = log(B + eps) - log(G + eps)      (eps = 1e-6)

and binned softly around ``bins`` centres ``linspace(-3, 3, bins)`` with a kernel k(d):

    H_c[i, j] = sum over pixels of  Iy * k(u - centre_i) * k(v - centre_j),
    Iy = sqrt(R^2 + G^2 + B^2 + eps)                   (intensity weight)

and the three planes are normalised together so the whole histogram sums to 1.

Two implementations live here, side by side:

* :func:`rgb_uv_histogram_reference` - the authors' code path: one image at a time, the
  six (u, v) coordinates, kernel matrices [pixels, bins] built in float64 and kept by
  autograd. Obviously right, slow, and memory hungry (GBs at 150 px, batch 16).
* :func:`rgb_uv_histogram` - the fast path used everywhere else. Same numbers (tested
  against the reference and against the authors' own outputs), but

  - only three of the six coordinates are distinct: with a = lR - lG, b = lR - lB,
    c = lG - lB, the planes use (a, b), (-a, c) and (-b, -c); because the bin centres are
    symmetric, k(-x - centre_i) = k(x - centre_{bins-1-i}), so a flipped plane costs nothing;
  - the whole batch goes through batched matrix products, in chunks of pixels small
    enough that the working memory is reused instead of requested from the OS;
  - a custom autograd function recomputes the kernel matrices in the backward pass
    instead of storing them, so memory does not grow with the image size.

Distances (section 2 of the notes): :func:`hellinger_distance`, :func:`kl_divergence`;
mixing: :func:`interpolate_histograms` and the training targets :func:`random_targets`.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "KERNELS", "EPS", "bin_centres", "rgb_uv_histogram", "rgb_uv_histogram_reference",
    "hellinger_distance", "kl_divergence", "interpolate_histograms", "random_targets",
]

#: the kernels k(d) the histogram can use to spread a coordinate over the bins
KERNELS = ("inverse-quadratic", "gaussian", "hard")
#: the epsilon of the reference code (inside the logs, the intensity and the normaliser)
EPS = 1e-6

# Working-memory budget per chunk, in elements of one [batch, pixels, 3 * bins] kernel block.
# 2**18 float32 elements = 1 MiB: the scratch buffers (see _Workspace) stay in the caches
# and are reused from chunk to chunk, and the batched matrix products still run at speed.
_CHUNK_ELEMENTS = 2**18


# ----------------------------------------------------------------------------- checks
def _check_args(images: torch.Tensor, bins: int, sigma: float, kernel: str, boundary, max_size) -> None:
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images: expected a torch.Tensor [B, 3, H, W] or [3, H, W], got {type(images).__name__}")
    if images.ndim not in (3, 4):
        raise ValueError(f"images: expected [B, 3, H, W] or [3, H, W], got shape {tuple(images.shape)}")
    if images.shape[-3] != 3:
        raise ValueError(f"images: expected 3 colour channels (RGB) in dim -3, got {images.shape[-3]} "
                         f"(shape {tuple(images.shape)}); drop alpha with images[..., :3, :, :]")
    if images.numel() == 0:
        raise ValueError(f"images: empty batch or image, shape {tuple(images.shape)}")
    if not (images.is_floating_point()):
        raise ValueError(f"images: expected a floating-point tensor with values in [0, 1], got {images.dtype}; "
                         f"for uint8 pictures use images.float() / 255")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ValueError(f"bins: expected an integer >= 2, got {bins!r}")
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma: expected a positive number (the kernel width, 0.02 in the paper), got {sigma!r}")
    if kernel not in KERNELS:
        raise ValueError(f"kernel: expected one of {KERNELS}, got {kernel!r}")
    try:
        lo, hi = (float(b) for b in boundary)
    except (TypeError, ValueError):
        raise ValueError(f"boundary: expected a pair (low, high) such as (-3.0, 3.0), got {boundary!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"boundary: expected (low, high) with low < high, got {boundary!r}")
    if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer))
                                 or max_size < 1):
        raise ValueError(f"max_size: expected None or a positive integer, got {max_size!r}")


def _warn_if_out_of_range(images: torch.Tensor) -> None:
    lo, hi = torch.aminmax(images.detach())
    if hi.item() > 1.5 or lo.item() < -0.5:
        warnings.warn(
            f"rgb_uv_histogram: images range over [{lo.item():.3g}, {hi.item():.3g}] but the histogram expects [0, 1] "
            f"and clamps to it (a [0, 255] picture becomes almost all white, a [-1, 1] network image loses "
            f"everything below its mid-grey). Convert first: images / 255, or histolib.images.to_unit(x).",
            stacklevel=3)


def _prepare(images, max_size):
    """Clamp to [0, 1], add the batch dimension and resize like the reference code."""
    x = images.clamp(0, 1)
    if max_size is not None:
        if x.shape[-2] > max_size or x.shape[-1] > max_size:
            # the reference code: a square max_size x max_size, aspect ratio not kept
            x = F.interpolate(x, size=(max_size, max_size), mode="bilinear", align_corners=False)
    return x


def bin_centres(bins: int = 64, boundary=(-3.0, 3.0), dtype=torch.float64, device=None) -> torch.Tensor:
    """The ``bins`` bin centres, ``numpy.linspace(low, high, bins)`` (end points included) as in the
    reference code. Returns [bins]."""
    return torch.from_numpy(np.linspace(float(boundary[0]), float(boundary[1]), int(bins))).to(device=device, dtype=dtype)


# ------------------------------------------------------------------ reference version
def _kernel_reference(diff: torch.Tensor, kernel: str, sigma: float, bins: int, boundary) -> torch.Tensor:
    if kernel == "hard":
        return (diff <= abs(boundary[1] - boundary[0]) / bins / 2).to(diff.dtype)
    if kernel == "gaussian":
        return torch.exp(-(diff ** 2) / sigma ** 2)
    return 1 / (1 + diff ** 2 / sigma ** 2)


def rgb_uv_histogram_reference(images: torch.Tensor, bins: int = 64, sigma: float = 0.02,
                               kernel: str = "inverse-quadratic", intensity_scale: bool = True,
                               boundary=(-3.0, 3.0), max_size: int | None = None) -> torch.Tensor:
    """The RGB-uv histogram written the way the authors' reference code computes it.

    One image at a time; for each of the six (u, v) coordinates a float64 distance matrix
    |x - centre| of shape [pixels, bins], the kernel, cast back to the image dtype, and one
    matrix product per channel. Slow and memory hungry; kept as the obviously-right
    version the fast :func:`rgb_uv_histogram` is tested against (same arguments, same result).
    """
    _check_args(images, bins, sigma, kernel, boundary, max_size)
    single = images.ndim == 3
    x = _prepare(images[None] if single else images, max_size)
    centres = bin_centres(bins, boundary, torch.float64, x.device)[None, :]      # [1, bins]
    hists = torch.zeros(x.shape[0], 3, bins, bins, dtype=x.dtype, device=x.device)
    for n in range(x.shape[0]):                                       # loop over the batch
        pixels = x[n].reshape(3, -1).t()                                # [N, 3]
        iy = torch.sqrt((pixels ** 2).sum(1, keepdim=True) + EPS) if intensity_scale else 1
        logs = torch.log(pixels + EPS)
        planes = []
        for c, (o1, o2) in enumerate(((1, 2), (0, 2), (0, 1))):        # R vs (G, B), G vs (R, B), B vs (R, G)
            u = (logs[:, c] - logs[:, o1])[:, None]
            v = (logs[:, c] - logs[:, o2])[:, None]
            ku = _kernel_reference((u - centres).abs(), kernel, sigma, bins, boundary).to(x.dtype)
            kv = _kernel_reference((v - centres).abs(), kernel, sigma, bins, boundary).to(x.dtype)
            planes.append(torch.mm((iy * ku).t(), kv))                 # [bins, bins]
        hists[n] = torch.stack(planes)
    hists = hists / (hists.sum(dim=(1, 2, 3), keepdim=True) + EPS)      # one normaliser per image
    return hists[0] if single else hists


# ------------------------------------------------------------------------ fast version
class _Workspace:
    """Scratch buffers reused from chunk to chunk (each chunk gets contiguous views of them).

    Memory written for the first time comes from the OS page by page, several times slower
    than memory already touched; allocating fresh [B, n, bins] blocks for every chunk would
    pay that price over and over. Here each buffer is allocated once per call.
    """

    def __init__(self, like: torch.Tensor, batch: int, chunk: int):
        self.like, self.batch, self.chunk, self.buffers = like, batch, chunk, {}

    def get(self, name: str, n: int, width: int) -> torch.Tensor:
        if name not in self.buffers:
            self.buffers[name] = self.like.new_empty(self.batch * self.chunk * width)
        return self.buffers[name][: self.batch * n * width].view(self.batch, n, width)


class _Kernel:
    """k(x - centre) for a block of coordinates, and what its derivative needs."""

    def __init__(self, kernel: str, sigma: float, bins: int, boundary, dtype, device):
        self.kernel, self.sigma = kernel, float(sigma)
        self.inv_sigma = 1.0 / float(sigma)
        self.half_width = abs(boundary[1] - boundary[0]) / bins / 2
        # the hard kernel decides bin membership with a threshold: compare in float64 like
        # the reference code, so the same pixels fall in the same bins
        self.centres = bin_centres(bins, boundary, torch.float64 if kernel == "hard" else dtype, device)

    def values(self, x: torch.Tensor, ws: _Workspace, with_slope: bool = False):
        """x: [B, n, 3]. Returns K [B, n, 3 * bins] = [Ka | Kb | Kc] and, with ``with_slope``,
        S [B, n, 3 * bins] with dk/dx = S (the derivative of each kernel value)."""
        B, n, _ = x.shape
        nb = self.centres.shape[0]
        k = ws.get("k", n, 3 * nb)
        if self.kernel == "hard":
            d = x.double()[..., None] - self.centres
            torch.le(d.abs_(), self.half_width, out=d)
            k.copy_(d.flatten(-2))
            return (k, None) if with_slope else k
        t = ws.get("t", n, 3 * nb)
        torch.sub(x[..., None], self.centres, out=t.view(B, n, 3, nb))
        t.mul_(self.inv_sigma)                                     # t = (x - centre) / sigma
        torch.mul(t, t, out=k)
        if self.kernel == "gaussian":
            k.neg_().exp_()                                        # k = exp(-t^2)
        else:
            k.add_(1).reciprocal_()                                # k = 1 / (1 + t^2)
        if not with_slope:
            return k
        # inverse quadratic: dk/dx = -2 t k^2 / sigma;  gaussian: dk/dx = -2 t k / sigma
        t.mul_(k)
        if self.kernel == "inverse-quadratic":
            t.mul_(k)
        t.mul_(-2 * self.inv_sigma)
        return k, t


class _RGBuvProducts(torch.autograd.Function):
    """Unnormalised histogram planes from the three distinct log-chroma coordinates.

    coords: [B, N, 3] holding a = lR - lG, b = lR - lB, c = lG - lB per pixel;
    weight: [B, N] (intensity or ones). Returns [B, 3, bins, bins]. With Ka, Kb, Kc the
    [N, bins] kernel matrices of a, b, c and W = diag(weight):

        H_R = (W Ka)^T Kb,   H_G = flip_rows((W Ka)^T Kc),   H_B = flip_both((W Kb)^T Kc)

    The kernel matrices are computed chunk by chunk and never stored: backward rebuilds them.
    """

    @staticmethod
    def forward(ctx, coords, weight, kern: _Kernel, bins: int, chunk: int):
        B, N, _ = coords.shape
        ws = _Workspace(coords, B, min(chunk, N))
        raw_ab = coords.new_zeros(B, bins, 2 * bins)          # [(W Ka)^T Kb | (W Ka)^T Kc]
        raw_bc = coords.new_zeros(B, bins, bins)              # (W Kb)^T Kc
        for s in range(0, N, chunk):
            n = min(chunk, N - s)
            k = kern.values(coords[:, s:s + n], ws)          # [B, n, 3 bins] = [Ka | Kb | Kc]
            wk = ws.get("wk", n, 2 * bins)
            torch.mul(k[..., :2 * bins], weight[:, s:s + n, None], out=wk)     # [W Ka | W Kb]
            raw_ab.baddbmm_(wk[..., :bins].transpose(1, 2), k[..., bins:])
            raw_bc.baddbmm_(wk[..., bins:].transpose(1, 2), k[..., 2 * bins:])
        ctx.save_for_backward(coords, weight)
        ctx.kern, ctx.bins, ctx.chunk = kern, bins, chunk
        return torch.stack([raw_ab[..., :bins], raw_ab[..., bins:].flip(-2), raw_bc.flip(-2, -1)], 1)

    @staticmethod
    def backward(ctx, grad):
        coords, weight = ctx.saved_tensors
        kern, b, chunk = ctx.kern, ctx.bins, ctx.chunk
        grad = grad.to(coords.dtype)
        # gradients with respect to the unflipped products [R | P] and Q
        g_ab = torch.cat([grad[:, 0], grad[:, 1].flip(-2)], -1).contiguous()     # [B, b, 2b]
        g_q = grad[:, 2].flip(-2, -1).contiguous()                                # [B, b, b]
        g_ab_t, g_q_t = g_ab.transpose(1, 2), g_q.transpose(1, 2)
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        B, N, _ = coords.shape
        ws = _Workspace(coords, B, min(chunk, N))
        d_coords = coords.new_empty(B, N, 3) if need_x else None
        d_weight = weight.new_empty(B, N) if need_w else None
        for s in range(0, N, chunk):
            n = min(chunk, N - s)
            k, slope = kern.values(coords[:, s:s + n], ws, with_slope=need_x)
            ka, kb, kc = k[..., :b], k[..., b:2 * b], k[..., 2 * b:]
            w = weight[:, s:s + n, None]
            ua = torch.bmm(k[..., b:], g_ab_t, out=ws.get("ua", n, b))   # dL/d(W Ka) = Kb R'^T + Kc P'^T
            ub = torch.bmm(kc, g_q_t, out=ws.get("ub", n, b))           # dL/d(W Kb) = Kc Q'^T
            if need_w:
                acc = torch.mul(ka, ua, out=ws.get("acc", n, b)).addcmul_(kb, ub)
                torch.sum(acc, -1, out=d_weight[:, s:s + n])
            if need_x and slope is not None:
                wk = torch.mul(k[..., :2 * b], w, out=ws.get("wk", n, 2 * b))        # [W Ka | W Kb]
                e = torch.bmm(wk[..., :b], g_ab, out=ws.get("e", n, 2 * b))          # [dKb from R | dKc from P]
                f = torch.bmm(wk[..., b:], g_q, out=ws.get("f", n, b))               # dKc from Q
                dka = ua.mul_(w)                                                       # dL/dKa
                dkb = e[..., :b].addcmul_(ub, w)                                       # dL/dKb
                dkc = e[..., b:].add_(f)                                               # dL/dKc
                acc = ws.get("acc", n, b)
                for col, (dk, sl) in enumerate(((dka, slope[..., :b]), (dkb, slope[..., b:2 * b]),
                                                (dkc, slope[..., 2 * b:]))):
                    torch.sum(torch.mul(dk, sl, out=acc), -1, out=d_coords[:, s:s + n, col])
            elif need_x:                        # hard kernel: a step function, zero slope
                d_coords[:, s:s + n] = 0
        return d_coords, d_weight, None, None, None


def rgb_uv_histogram(images: torch.Tensor, bins: int = 64, sigma: float = 0.02,
                     kernel: str = "inverse-quadratic", intensity_scale: bool = True,
                     boundary=(-3.0, 3.0), max_size: int | None = None) -> torch.Tensor:
    """The RGB-uv colour histogram of HistoGAN (paper Eq. 2-3), batched, differentiable.

    images: [B, 3, H, W] or [3, H, W], any H and W, values in [0, 1]. Values outside are
        CLAMPED to [0, 1] (what the reference code does), so a mistake in the range does
        not crash but silently changes the answer: a [0, 255] picture becomes nearly all
        white, a [-1, 1] network image loses everything below mid-grey. A warning is
        issued when the values reach above 1.5 or below -0.5. Integer tensors are refused
        (ValueError): convert with ``images.float() / 255``.
    bins: bins per axis (64 in the paper); centres ``linspace(boundary[0], boundary[1], bins)``.
    sigma: kernel width in log-chroma units (0.02).
    kernel: "inverse-quadratic" (1 / (1 + (d/sigma)^2), the default), "gaussian"
        (exp(-(d/sigma)^2)), or "hard" (1 if d <= half a bin width: a plain count; its
        gradient with respect to the colours is zero).
    intensity_scale: weight each pixel by sqrt(R^2 + G^2 + B^2 + eps) (True in the paper).
    boundary: (low, high) of the bin centres, (-3, 3); must be symmetric, (-b, b). The
        log-chroma planes are symmetric themselves (G's u is minus R's u), and the fast
        path relies on it; :func:`rgb_uv_histogram_reference` accepts any (low, high).
    max_size: if H or W exceeds it, first resize bilinearly to max_size x max_size (the
        reference code does this with 150); None never resizes. Memory stays bounded
        either way: the pixels are processed in chunks.

    Returns [B, 3, bins, bins] (or [3, bins, bins]) in the input's dtype (float32 and
    float64 are computed in that dtype; float16/bfloat16 are computed in float32),
    non-negative, each histogram summing to 1 (up to eps = 1e-6 in the normaliser).
    An all-black image gives u = v = 0 everywhere (no NaN), like an all-white one.
    Differentiable with respect to ``images`` (the kernel matrices are recomputed in
    the backward pass rather than stored).
    """
    _check_args(images, bins, sigma, kernel, boundary, max_size)
    if not math.isclose(boundary[0], -boundary[1], rel_tol=1e-12, abs_tol=1e-12):
        raise ValueError(f"boundary: the fast histogram needs symmetric bounds (-b, b), got {boundary!r}; "
                         f"use rgb_uv_histogram_reference for asymmetric ones")
    _warn_if_out_of_range(images)
    single = images.ndim == 3
    in_dtype = images.dtype
    x = images[None] if single else images
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    x = _prepare(x, max_size)
    B = x.shape[0]

    flat = x.flatten(2)                                             # [B, 3, N]
    logs = torch.log(flat + EPS)
    lr, lg, lb = logs.unbind(1)
    coords = torch.stack([lr - lg, lr - lb, lg - lb], -1)            # [B, N, 3]: a, b, c
    if intensity_scale:
        weight = torch.sqrt((flat * flat).sum(1) + EPS)             # [B, N]
    else:
        weight = torch.ones_like(lr)

    kern = _Kernel(kernel, sigma, bins, boundary, x.dtype, x.device)
    chunk = max(16, _CHUNK_ELEMENTS // (B * 3 * bins))
    raw = _RGBuvProducts.apply(coords, weight, kern, int(bins), chunk)
    hists = raw / (raw.sum(dim=(1, 2, 3), keepdim=True) + EPS)
    hists = hists.to(in_dtype)
    return hists[0] if single else hists


# ------------------------------------------------------------------ distances, mixing
def _check_pair(p: torch.Tensor, q: torch.Tensor) -> None:
    for name, h in (("p", p), ("q", q)):
        if not isinstance(h, torch.Tensor) or h.ndim < 3:
            raise ValueError(f"{name}: expected a histogram [B, 3, bins, bins] or [3, bins, bins], "
                             f"got {getattr(h, 'shape', type(h).__name__)}")
    if p.shape[-3:] != q.shape[-3:]:
        raise ValueError(f"p, q: histograms of different shapes {tuple(p.shape)} and {tuple(q.shape)}")


class _SafeSqrt(torch.autograd.Function):
    """sqrt(x) with the exact value, and a derivative capped at 0.5 / sqrt(floor) near 0.

    d sqrt(x)/dx = 1 / (2 sqrt(x)) is infinite at an empty bin; the cap keeps gradients
    finite (at most 5e5 with the floor 1e-12) without changing any value."""

    @staticmethod
    def forward(ctx, x, floor: float):
        y = torch.sqrt(x.clamp_min(0))
        ctx.save_for_backward(y)
        ctx.floor = floor
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * 0.5 / y.clamp_min(math.sqrt(ctx.floor)), None


def hellinger_distance(p: torch.Tensor, q: torch.Tensor, floor: float = 1e-12) -> torch.Tensor:
    """Hellinger distance between histograms, per sample (paper Eq. 4's distance):

        H(p, q) = (1 / sqrt(2)) * || sqrt(p) - sqrt(q) ||_2          in [0, 1]

    p, q: [B, 3, bins, bins] (or [3, bins, bins]) non-negative, each summing to 1; they
    broadcast over the batch (any leading dims: p[:, None] against q[None] gives all pairs).
    Returns [B] (a scalar tensor for unbatched input; the broadcast leading dims in general).
    Gradients are finite everywhere: the square roots' derivative is capped at
    0.5 / sqrt(floor) at empty bins, and the distance of a histogram to itself has gradient 0.
    """
    _check_pair(p, q)
    diff = _SafeSqrt.apply(p, floor) - _SafeSqrt.apply(q, floor)
    sq = diff.flatten(-3).pow(2).sum(-1)
    # sqrt with zero gradient at 0 (p == q), instead of 0 / 0
    norm = torch.where(sq > 0, sq, torch.ones_like(sq)).sqrt() * (sq > 0)
    return norm / math.sqrt(2.0)


def kl_divergence(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Kullback-Leibler divergence KL(p || q) = sum p * log(p / q), per sample.

    p, q: [B, 3, bins, bins] (or [3, bins, bins], or any leading dims that broadcast),
    each summing to 1. Computed as
    sum p * (log(p + eps) - log(q + eps)), so an empty bin of q where p has mass costs a
    large but finite amount (KL itself would be infinite) and 0 * log 0 counts as 0.
    Not symmetric: KL(p || q) != KL(q || p). Returns [B] (scalar for unbatched input), >= 0.
    """
    _check_pair(p, q)
    return (p * (torch.log(p + eps) - torch.log(q + eps))).flatten(-3).sum(-1)


def interpolate_histograms(h1: torch.Tensor, h2: torch.Tensor, t) -> torch.Tensor:
    """The straight line between two histograms: (1 - t) * h1 + t * h2.

    h1, h2: [B, 3, bins, bins] or [3, bins, bins] (broadcast against each other).
    t: a number in [0, 1] or a tensor [B] of them (one per sample; h1 and h2 may then be
    single histograms, [3, bins, bins] or [1, 3, bins, bins], giving B mixes); t = 0
    gives h1, t = 1 gives h2. Returns [B, 3, bins, bins] (or [3, bins, bins]).
    A mix of two normalised histograms is again normalised and non-negative (that is why
    t must stay in [0, 1]).
    """
    _check_pair(h1, h2)
    t = torch.as_tensor(t, dtype=h1.dtype, device=h1.device)
    if t.ndim > 1:
        raise ValueError(f"t: expected a number or a tensor [B], got shape {tuple(t.shape)}")
    if t.numel() and (t.min() < 0 or t.max() > 1):
        raise ValueError(f"t: expected values in [0, 1], got [{t.min().item():.3g}, {t.max().item():.3g}]")
    if t.ndim == 1:
        t = t.view(-1, 1, 1, 1)
        try:
            torch.broadcast_shapes(h1.shape, h2.shape, t.shape)
        except RuntimeError:
            raise ValueError(f"t: {t.shape[0]} values do not match the batch of h1 {tuple(h1.shape)} "
                             f"and h2 {tuple(h2.shape)}") from None
    return torch.lerp(h1, h2, t)


def random_targets(hists: torch.Tensor, generator: torch.Generator | None = None, return_parts: bool = False,
                   mix: bool = True):
    """Training targets: per sample, a random mix of the histograms of two random images.

    hists: [B, 3, bins, bins], the histograms of a batch of real images (any B >= 1).
    For each of the B outputs: pick image i at random and a different image j (the same
    one when B == 1), draw t ~ U[0, 1) and return t * hists[i] + (1 - t) * hists[j] -
    the reference code's scheme, so the generator learns more than the training set's
    own histograms. ``generator`` (a CPU ``torch.Generator``) makes the draws
    reproducible; draws happen on the CPU whatever the device of ``hists``.
    ``mix=False``: t = 1, i.e. each target is one random image's own histogram (the kind of
    target ``histolib.metrics`` evaluates with); the same random draws are made either way.

    Returns [B, 3, bins, bins]; with ``return_parts`` also ``(i, j, t)``, each [B].
    """
    if not isinstance(hists, torch.Tensor) or hists.ndim != 4 or hists.shape[1] != 3:
        raise ValueError(f"hists: expected [B, 3, bins, bins], got {getattr(hists, 'shape', type(hists).__name__)}")
    B = hists.shape[0]
    if B < 1:
        raise ValueError("hists: empty batch")
    i = torch.randint(0, B, (B,), generator=generator)
    j = (i + torch.randint(1, B, (B,), generator=generator)) % B if B > 1 else i.clone()
    t = torch.rand(B, generator=generator, dtype=torch.float64)
    if not mix:
        t = torch.ones_like(t)
    i, j, tt = i.to(hists.device), j.to(hists.device), t.to(device=hists.device, dtype=hists.dtype)
    targets = torch.lerp(hists[j], hists[i], tt.view(-1, 1, 1, 1))        # t * h_i + (1 - t) * h_j
    return (targets, (i, j, tt)) if return_parts else targets
