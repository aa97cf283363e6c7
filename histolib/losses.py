"""Adversarial losses, regularisers and the histogram loss.

Everything the trainer adds up to a scalar it calls ``backward`` on. Conventions:

* **logits** are raw discriminator scores, any shape ([B] or [B, 1]); a higher score
  means "more real". No sigmoid is ever applied by the caller.
* **images** are what the networks see and make: [B, 3, H, W] in [-1, 1]. The histogram
  loss maps them to [0, 1] itself (:func:`histolib.images.to_unit`).
* every loss returns a **scalar** (a 0-d tensor), averaged over the batch.

Three adversarial pairs (pick one with :func:`adversarial_losses`):

=========  ====================================================  ==========================
name       discriminator loss                                    generator loss
=========  ====================================================  ==========================
logistic   E[softplus(D(fake))] + E[softplus(-D(real))]          E[softplus(-D(fake))]
hinge      E[relu(1 - D(real))] + E[relu(1 + D(fake))]           -E[D(fake)]
wgan       E[D(fake)] - E[D(real)] + drift E[D(real)^2]          -E[D(fake)]
=========  ====================================================  ==========================

and the regularisers: R1 on reals (StyleGAN2's default, with ``gamma``), the reference
HistoGAN code's gradient penalty on reals, WGAN-GP on interpolates, and path-length
regularisation with its moving target (:class:`PathLengthPenalty`).

Why softplus: ``-log(sigmoid(x)) = softplus(-x)`` and ``-log(1 - sigmoid(x)) = softplus(x)``
exactly, but computed as written in float32 ``sigmoid(x)`` rounds to 0 below about -88 and to
1 above about 16.6, so ``log(sigmoid(x))`` or ``log(1 - sigmoid(x))`` returns ``-inf`` and its
gradient is NaN. ``softplus`` is finite for every input. (The student implementation this
project grew from died of this; notebook 06 reproduces it.)

Every penalty that differentiates through a gradient calls ``torch.autograd.grad`` with
``create_graph=True``; without it the penalty is a constant and does nothing (the other
bug that sank the student implementation). The tests prove the penalties change the
parameter gradients.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from histolib.images import to_unit

__all__ = [
    "d_logistic_loss", "g_nonsaturating_loss",
    "d_hinge_loss", "g_hinge_loss",
    "d_wgan_loss", "g_wgan_loss", "wgan_gradient_penalty",
    "r1_penalty", "real_gradient_penalty",
    "PathLengthPenalty", "histogram_loss",
    "adversarial_losses", "ADVERSARIAL_LOSSES",
]


def _check_logits(name: str, logits) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        raise ValueError(f"{name}: expected a tensor of discriminator logits, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise ValueError(f"{name}: expected floating-point logits, got dtype {logits.dtype}")
    if logits.numel() == 0:
        raise ValueError(f"{name}: got an empty tensor; pass the discriminator's scores for a non-empty batch")
    return logits


# ---------------------------------------------------------------------------------------
# Non-saturating logistic loss (Goodfellow et al. 2014, Eq. 1 with the -log D trick;
# StyleGAN2's default). With D(x) = sigmoid(l(x)):
#   -log D(x)       = softplus(-l(x))
#   -log(1 - D(x))  = softplus(l(x))
# ---------------------------------------------------------------------------------------

def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator's logistic loss: ``E[softplus(l(fake))] + E[softplus(-l(real))]``.

    This is the GAN value function (Goodfellow et al. 2014, Eq. 1) negated,
    ``-E[log sigmoid(l(real))] - E[log(1 - sigmoid(l(fake)))]``, written with softplus so
    it stays finite for any logit (written with sigmoids it is ``inf`` once a fake scores
    above about 16.6 or a real below about -88 in float32).

    real_logits: [B] or [B, 1]; fake_logits: [B'] or [B', 1] (the two batches may differ
    in size). Returns a scalar >= 0; it equals 2 log 2 = 1.386 when D outputs 0.
    """
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator's non-saturating loss: ``E[softplus(-l(fake))] = -E[log sigmoid(l(fake))]``.

    The "-log D" trick of Goodfellow et al. 2014 (Sec. 3): the gradient stays large while
    D confidently rejects the fakes. fake_logits: [B] or [B, 1]. Returns a scalar >= 0.
    """
    _check_logits("fake_logits", fake_logits)
    return F.softplus(-fake_logits).mean()


# ---------------------------------------------------------------------------------------
# Hinge loss (Lim & Ye 2017; Miyato et al. 2018, Eq. 16-17) — the reference HistoGAN
# code's choice (it inherits it from lucidrains/stylegan2-pytorch).
# ---------------------------------------------------------------------------------------

def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator's hinge loss: ``E[relu(1 - l(real))] + E[relu(1 + l(fake))]``.

    Reals scoring above +1 and fakes below -1 cost nothing, so D has no reason to push
    scores further. real_logits: [B] or [B, 1]; fake_logits: [B'] or [B', 1]. Scalar >= 0.
    """
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def g_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator's hinge loss: ``-E[l(fake)]``. fake_logits: [B] or [B, 1]. Scalar."""
    _check_logits("fake_logits", fake_logits)
    return -fake_logits.mean()


# ---------------------------------------------------------------------------------------
# Wasserstein loss with gradient penalty (Gulrajani et al. 2017, Algorithm 1 / Eq. 3)
# and the drift term of Karras et al. 2018 (ProGAN, Sec. A.1, eps_drift = 1e-3).
# ---------------------------------------------------------------------------------------

def d_wgan_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, drift: float = 1e-3) -> torch.Tensor:
    """Critic's Wasserstein loss: ``E[l(fake)] - E[l(real)] + drift * E[l(real)^2]``.

    The drift term (ProGAN, Karras et al. 2018) keeps the scores from wandering off to
    +-infinity, which the bare Wasserstein loss allows (the student run reached -1e7).
    Add :func:`wgan_gradient_penalty` for the Lipschitz constraint; do not stack R1 on top.
    real_logits: [B] or [B, 1]; fake_logits: [B'] or [B', 1]. Returns a scalar.
    """
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    if drift < 0:
        raise ValueError(f"drift: must be >= 0 (ProGAN uses 1e-3), got {drift}")
    return fake_logits.mean() - real_logits.mean() + drift * real_logits.square().mean()


def g_wgan_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator's Wasserstein loss: ``-E[l(fake)]``. fake_logits: [B] or [B, 1]. Scalar."""
    _check_logits("fake_logits", fake_logits)
    return -fake_logits.mean()


def _per_sample_norm(grad: torch.Tensor) -> torch.Tensor:
    """L2 norm of each sample's gradient: [B, ...] -> [B] (float32 or wider)."""
    g = grad.flatten(1)
    if g.dtype in (torch.float16, torch.bfloat16):
        g = g.float()
    return g.norm(2, dim=1)


def wgan_gradient_penalty(discriminator: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                          fake: torch.Tensor, weight: float = 10.0,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017, Eq. 3): ``weight * E[(||grad_x D(x_hat)||_2 - 1)^2]``.

    ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U[0, 1)`` per sample, i.e.
    random points on the lines between real and fake samples. The gradient is taken with
    ``create_graph=True`` so the penalty reaches D's parameters.

    discriminator: callable, [B, ...] -> logits [B] or [B, 1].
    real, fake: [B, ...] of the same shape (images [B, 3, H, W] in [-1, 1], or toy data);
    ``fake`` is detached here (the penalty trains D only).
    weight: lambda, 10 in the paper. generator: optional ``torch.Generator`` for eps.
    Returns a scalar >= 0; it is 0 for a critic whose gradient has norm 1 everywhere.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real, fake: must have the same shape to interpolate, got {tuple(real.shape)} "
                         f"and {tuple(fake.shape)}")
    if real.ndim < 2:
        raise ValueError(f"real: expected a batch [B, ...] with at least 2 dims, got {tuple(real.shape)}")
    shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    gen_device = generator.device if generator is not None else real.device
    eps = torch.rand(shape, generator=generator, device=gen_device, dtype=torch.float32).to(real)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = discriminator(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return weight * (_per_sample_norm(grad) - 1).square().mean()


# ---------------------------------------------------------------------------------------
# Penalties on real images.
# ---------------------------------------------------------------------------------------

def _grad_wrt_reals(real_logits: torch.Tensor, real_images: torch.Tensor, who: str) -> torch.Tensor:
    _check_logits("real_logits", real_logits)
    if not isinstance(real_images, torch.Tensor) or not real_images.requires_grad:
        raise ValueError(f"real_images: must require grad for {who}; call "
                         "`real_images = real_images.detach().requires_grad_(True)` before passing "
                         "them to the discriminator")
    if real_logits.grad_fn is None:
        raise ValueError(f"real_logits: has no autograd graph; compute it as discriminator(real_images) "
                         f"with grad enabled (not under torch.no_grad()) for {who}")
    if real_logits.ndim == 0 or real_logits.shape[0] != real_images.shape[0]:
        raise ValueError(f"real_logits, real_images: batch sizes differ ({real_logits.shape[0]} vs "
                         f"{real_images.shape[0]}); pass the scores of exactly these images")
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018, Eq. 9) without its gamma/2: ``E[||grad_x l(x)||_2^2]`` on reals.

    Penalises the discriminator's slope at the data, which makes GAN training converge
    locally. The caller multiplies by ``gamma / 2`` (and, for lazy regularisation every
    k steps, by k; StyleGAN2 Sec. 3.1).

    real_logits: [B] or [B, 1], computed from ``real_images`` with grad enabled.
    real_images: [B, ...] with ``requires_grad=True`` (a ValueError says how otherwise).
    Returns a scalar >= 0, differentiable w.r.t. D's parameters (``create_graph=True``).
    """
    grad = _grad_wrt_reals(real_logits, real_images, "the R1 penalty")
    g = grad.flatten(1)
    if g.dtype in (torch.float16, torch.bfloat16):
        g = g.float()
    return g.square().sum(1).mean()


def real_gradient_penalty(real_logits: torch.Tensor, real_images: torch.Tensor,
                          weight: float = 10.0) -> torch.Tensor:
    """The reference HistoGAN code's penalty on reals: ``weight * E[(||grad_x l(x)||_2 - 1)^2]``.

    lucidrains/stylegan2-pytorch's ``gradient_penalty`` (which the HistoGAN authors kept):
    the WGAN-GP form, but evaluated on real images instead of interpolates, and used with
    the hinge loss every 4 steps. Shapes as :func:`r1_penalty`. Returns a scalar >= 0.
    """
    grad = _grad_wrt_reals(real_logits, real_images, "the gradient penalty")
    return weight * (_per_sample_norm(grad) - 1).square().mean()


# ---------------------------------------------------------------------------------------
# Path-length regularisation (StyleGAN2, Karras et al. 2020, Sec. 3.2, Eq. 4).
# ---------------------------------------------------------------------------------------

class PathLengthPenalty(nn.Module):
    """Path-length regularisation (StyleGAN2, Eq. 4): ``E[(||J_w^T y||_2 - a)^2]``.

    ``J_w`` is the Jacobian of the generated image w.r.t. w, ``y`` random images with
    N(0, 1) pixels scaled by ``1 / sqrt(H * W)`` (so the lengths do not depend on the
    resolution), and ``a`` a moving average of the lengths, kept in the buffer
    ``pl_mean`` (saved in ``state_dict``, so checkpoints resume it). Each call updates

        pl_mean <- pl_mean + decay * (mean(lengths) - pl_mean)

    (a lerp towards the new batch mean; StyleGAN2 uses decay = 0.01) and then returns
    the penalty against the updated target. The caller multiplies by its weight and, for
    lazy regularisation every k steps, by k.

    forward(images, w): images [B, 3, H, W], the generator's output for ``w`` (kept in
    the autograd graph); w [B, w_dim] (or [B, num_ws, w_dim]; the lengths are then
    averaged over the ws, as in StyleGAN2-ADA), with ``requires_grad``. Returns a scalar.
    """

    pl_mean: torch.Tensor

    def __init__(self, decay: float = 0.01):
        super().__init__()
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay: must be in (0, 1] (StyleGAN2 uses 0.01), got {decay}")
        self.decay = float(decay)
        self.register_buffer("pl_mean", torch.zeros(()))

    def lengths(self, images: torch.Tensor, w: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """``||J_w^T y||_2`` per sample: images [B, 3, H, W], w [B, w_dim] -> [B] (float32 or wider)."""
        if images.ndim != 4:
            raise ValueError(f"images: expected [B, 3, H, W], got {tuple(images.shape)}")
        if not isinstance(w, torch.Tensor) or not w.requires_grad:
            raise ValueError("w: must require grad and be the latent the images were made from; "
                             "call `w.requires_grad_(True)` (or keep w in the graph) before the synthesis")
        if w.ndim not in (2, 3) or w.shape[0] != images.shape[0]:
            raise ValueError(f"w: expected [B, w_dim] or [B, num_ws, w_dim] with B = {images.shape[0]}, "
                             f"got {tuple(w.shape)}")
        h, wd = images.shape[-2:]
        gen_device = generator.device if generator is not None else images.device
        noise = torch.randn(images.shape, generator=generator, device=gen_device, dtype=torch.float32)
        noise = noise.to(images) / math.sqrt(h * wd)
        (grad,) = torch.autograd.grad((images * noise).sum(), w, create_graph=True)
        if grad.dtype in (torch.float16, torch.bfloat16):
            grad = grad.float()
        if grad.ndim == 3:
            return grad.square().sum(2).mean(1).sqrt()
        return grad.square().sum(1).sqrt()

    def forward(self, images: torch.Tensor, w: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        lengths = self.lengths(images, w, generator)
        with torch.no_grad():
            new_mean = self.pl_mean + self.decay * (lengths.mean().detach().to(self.pl_mean) - self.pl_mean)
            self.pl_mean.copy_(new_mean)
        return (lengths - self.pl_mean.detach().to(lengths)).square().mean()

    def extra_repr(self) -> str:
        return f"decay={self.decay}"


# ---------------------------------------------------------------------------------------
# The histogram loss (HistoGAN, Afifi et al. 2021, Eq. 4).
# ---------------------------------------------------------------------------------------

def histogram_loss(target_hist: torch.Tensor, fake_images: torch.Tensor, alpha: float = 2.0,
                   sigma: float = 0.02, max_size: int | None = None,
                   kernel: str = "inverse-quadratic") -> torch.Tensor:
    """HistoGAN's colour loss (Eq. 4): ``alpha * E_b[H(target_b, hist(fake_b))]``.

    H is the Hellinger distance ``(1/sqrt 2) ||sqrt(p) - sqrt(q)||_2`` in [0, 1] between
    each sample's target histogram and the RGB-uv histogram (paper Eq. 2-3) of the image
    it generated, averaged over the batch (the paper's per-image form; the reference code
    folds the batch into one square root instead).

    target_hist: [B, 3, bins, bins] (or [1, 3, bins, bins]: one target for every image),
    each summing to 1 (``bins`` is read from it).
    fake_images: [B, 3, H, W] in [-1, 1] (mapped to [0, 1] and clamped, so pixels
    outside [-1, 1] get no gradient from this loss). alpha: the weight, 2 in the paper.
    sigma, kernel, max_size: passed to :func:`histolib.histogram.rgb_uv_histogram`.

    Computed in float32 with autocast off, whatever the caller's precision: the log-chroma
    coordinates and the kernel need it. Returns a float32 scalar in [0, alpha].
    """
    from histolib.histogram import hellinger_distance, rgb_uv_histogram

    if target_hist.ndim != 4 or target_hist.shape[1] != 3 or target_hist.shape[2] != target_hist.shape[3]:
        raise ValueError(f"target_hist: expected [B, 3, bins, bins], got {tuple(target_hist.shape)}")
    if fake_images.ndim != 4 or fake_images.shape[1] != 3:
        raise ValueError(f"fake_images: expected [B, 3, H, W] in [-1, 1], got {tuple(fake_images.shape)}")
    if target_hist.shape[0] not in (1, fake_images.shape[0]):
        raise ValueError(f"target_hist, fake_images: one target per image (or one for all) is needed, got "
                         f"{target_hist.shape[0]} targets for {fake_images.shape[0]} images")
    bins = target_hist.shape[-1]
    with torch.autocast(device_type=fake_images.device.type, enabled=False):
        fake_hist = rgb_uv_histogram(to_unit(fake_images.float()), bins=bins, sigma=sigma,
                                     kernel=kernel, max_size=max_size)
        return alpha * hellinger_distance(target_hist.float(), fake_hist).mean()


def range_penalty(images: torch.Tensor) -> torch.Tensor:
    """``mean(relu(|x| - 1)^2)``: how far generated pixels stray outside [-1, 1].

    Not in the HistoGAN paper; histolib adds it to the generator's loss (weight
    ``TrainConfig.range_weight``) because the histogram loss needs it. The histogram sees
    images clamped to [0, 1], so a pixel outside [-1, 1] is invisible to it and gets no
    gradient from it; and the histogram loss's gradient, on its own, pushes pixels outward
    (towards saturated colours) into that dead zone, where they stay. Measured on the toy
    preset: fitting 8 fixed targets with the histogram loss alone, the output range grew to
    [-200, 120] and the error went back up to where it started; with this term (weight 10)
    the range stayed near [-1.3, 1.5] and the error kept falling. It is zero for any image
    inside [-1, 1], so it never fights the adversarial loss there.

    images: [B, 3, H, W], the generator's output (meant to be in [-1, 1]). Returns a scalar.
    """
    return F.relu(images.abs() - 1).square().mean()


# ---------------------------------------------------------------------------------------
# Choosing a pair by name.
# ---------------------------------------------------------------------------------------

ADVERSARIAL_LOSSES: dict[str, tuple[Callable, Callable]] = {
    "logistic": (d_logistic_loss, g_nonsaturating_loss),
    "hinge": (d_hinge_loss, g_hinge_loss),
    "wgan": (d_wgan_loss, g_wgan_loss),
}


def adversarial_losses(name: str) -> tuple[Callable, Callable]:
    """``(d_loss_fn, g_loss_fn)`` for ``name`` in {"logistic", "hinge", "wgan"}.

    d_loss_fn(real_logits, fake_logits) -> scalar; g_loss_fn(fake_logits) -> scalar.
    "logistic" is StyleGAN2's default (pair it with R1), "hinge" the reference HistoGAN
    code's (pair it with :func:`real_gradient_penalty`), "wgan" pairs with
    :func:`wgan_gradient_penalty`.
    """
    try:
        return ADVERSARIAL_LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"name: unknown adversarial loss {name!r}; choose one of "
                         f"{', '.join(sorted(ADVERSARIAL_LOSSES))}") from None
