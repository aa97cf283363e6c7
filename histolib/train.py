"""Training HistoGAN: ``TrainConfig``, the ``Trainer`` and ``python -m histolib.train``.

One training step (StyleGAN2's recipe unless told otherwise)::

    D step   freeze G, zero D's gradients, for each micro-batch:
               fake = G(z, target).detach();  loss_D = adv_D(D(real), D(fake))
               every r1_interval steps also + gamma/2 * r1_interval * R1(D, real)
             -> one Adam step for D (skipped if anything is not finite)
    G step   freeze D, zero G's gradients, for each micro-batch:
               fake = G(z, target);  loss_G = adv_G(D(fake)) + alpha * Hellinger(target, hist(fake))
               every pl_interval steps also + pl_weight * pl_interval * path_length(fake, w)
             -> one Adam step for G, then the EMA copy of G moves towards G

Targets: each sample's target histogram mixes the histograms of two random real images
of the batch, ``t h1 + (1 - t) h2`` with t ~ U[0, 1) (``histolib.histogram.random_targets``).

Reproducibility: every random draw of the trainer comes from one seeded
``torch.Generator`` (latents, targets, penalties' noise) or the seeded global torch RNG
(the generator's noise inputs); data order comes from ``InfiniteBatchSampler`` that
can start at any batch. A checkpoint stores all of it, so on the CPU N steps + save +
resume + N steps gives the same weights as 2N steps straight (tests/test_train.py).

Several processes (``torchrun``): data parallel. Each rank draws its own share of the
batch, gradients are averaged with one all-reduce per network and step (NCCL on GPUs,
gloo on the CPU) before the optimiser step, so the weights stay identical on every rank.
We all-reduce explicitly, as StyleGAN2-ADA does, rather than wrapping the networks in
``DistributedDataParallel``, because R1 and path length differentiate through the
networks twice, which the DDP wrapper does not support.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import losses as L
from .checkpoint import CheckpointError, load_checkpoint, prune_checkpoints, save_checkpoint
from .config import HistoGANConfig
from .discriminator import Discriminator
from .generator import HistoGAN
from .histogram import random_targets, rgb_uv_histogram
from .images import pick_device, to_unit

__all__ = ["TrainConfig", "Trainer", "InfiniteBatchSampler", "ConfigError", "read_log", "main"]

CHECKPOINT_FORMAT = "histolib-train-1"


class ConfigError(ValueError):
    """A training setting that cannot work; the message is one line naming it and the fix."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything about a run that is not the networks' shape (that is ``HistoGANConfig``).

    The defaults are StyleGAN2's recipe (non-saturating logistic loss, lazy R1, path
    length every 4 steps, Adam lr 0.002 betas (0, 0.99), EMA of G) at a CPU-sized batch.
    ``TrainConfig.reference_recipe()`` gives the HistoGAN reference code's instead.
    """
    data: str = "toy"                 # "toy" | "anime" | a folder of images
    data_size: int = 10_000           # number of toy faces (ignored for folders)
    batch_size: int = 8               # images per step, over all processes
    micro_batch: int | None = None    # split each step's batch into micro-batches of this size
    steps: int = 1000                 # optimiser steps to train for (in total, counting resumed ones)
    seed: int = 0
    loss: str = "logistic"            # "logistic" (non-saturating) | "hinge" | "wgan"
    lr: float = 0.002
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float | None = None     # None: StyleGAN2-ADA's heuristic 0.0002 * resolution^2 / batch
    r1_interval: int = 16             # lazy R1: every this many D steps (0 = never)
    real_gp_weight: float = 0.0       # the reference code's gradient penalty on reals (used instead of R1 when > 0)
    pl_weight: float = 2.0            # path-length regularisation weight (0 = off)
    pl_interval: int = 4
    hist_alpha: float = 2.0           # weight of the histogram (Hellinger) loss (paper: 2; toy faces: 10, see --hist-alpha)
    range_weight: float = 10.0        # pulls generated pixels outside [-1, 1] back (see losses.range_penalty)
    mix_targets: bool = True          # targets mix two real images' histograms (reference); False: one image's own
    ema_half_life: float = 2500.0     # images for the EMA of G to move halfway (StyleGAN2: 10 kimg at batch 32)
    ema_rampup: float | None = 0.05   # half-life <= this fraction of images seen so far (None: off)
    amp: str = "none"                 # "none" | "bf16" | "fp16" (CUDA only; CPU always float32)
    device: str | None = None         # None: CUDA when present, else CPU
    workers: int = 0                  # DataLoader worker processes
    out_dir: str = "runs"
    name: str = "toy"
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    max_bad_steps: int = 5            # consecutive non-finite steps before reloading the last checkpoint
    n_sample_z: int = 6               # sample grid: columns (fixed latents)
    n_sample_targets: int = 4         # sample grid: rows (fixed target images)

    def __post_init__(self):
        def bad(field_name, why):
            raise ConfigError(f"TrainConfig.{field_name}: {why}")
        if self.batch_size < 1:
            bad("batch_size", f"must be >= 1, got {self.batch_size}")
        if self.micro_batch is not None:
            if self.micro_batch < 1:
                bad("micro_batch", f"must be >= 1, got {self.micro_batch}")
            if self.batch_size % self.micro_batch:
                bad("micro_batch", f"batch_size {self.batch_size} is not divisible by micro_batch "
                                   f"{self.micro_batch}; pick a divisor of the batch")
        if self.steps < 0:
            bad("steps", f"must be >= 0, got {self.steps}")
        if self.loss not in ("logistic", "hinge", "wgan"):
            bad("loss", f"unknown loss {self.loss!r}; choose logistic, hinge or wgan")
        if self.amp not in ("none", "bf16", "fp16"):
            bad("amp", f"unknown {self.amp!r}; choose none, bf16 or fp16")
        for name in ("r1_interval", "pl_interval", "log_every", "sample_every", "checkpoint_every", "workers",
                     "keep_checkpoints", "data_size"):
            if getattr(self, name) < 0:
                bad(name, f"must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            bad("lr", f"must be > 0, got {self.lr}")
        for name in ("hist_alpha", "range_weight"):
            if not getattr(self, name) >= 0:  # also catches NaN
                bad(name, f"must be >= 0, got {getattr(self, name)}")
        if self.r1_gamma is not None and not self.r1_gamma >= 0:
            bad("r1_gamma", f"must be >= 0 (or None for the default heuristic), got {self.r1_gamma}")
        if self.max_bad_steps < 1:
            bad("max_bad_steps", f"must be >= 1, got {self.max_bad_steps}")

    @classmethod
    def reference_recipe(cls, **overrides) -> "TrainConfig":
        """The HistoGAN reference code's recipe: hinge loss, gradient penalty (weight 10)
        on reals every 4 steps, path length every 32, lr 2e-4, Adam betas (0.5, 0.9),
        EMA decay 0.995 per step (as a half-life in images at this batch)."""
        batch = overrides.get("batch_size", cls.batch_size)
        half_life = batch * math.log(0.5) / math.log(0.995)
        base = dict(loss="hinge", real_gp_weight=10.0, r1_interval=4, pl_interval=32, lr=2e-4,
                    betas=(0.5, 0.9), ema_half_life=half_life, ema_rampup=None)
        base.update(overrides)
        return cls(**base)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


class InfiniteBatchSampler(torch.utils.data.Sampler):
    """Yields batches of dataset indices forever, reproducibly, from any starting batch.

    Epoch e is a permutation of the dataset drawn from ``seed + e``; with several
    processes, rank r takes every world-th index of it. ``start`` skips that many
    batches, which is how a resumed run continues with exactly the data it would have
    seen. Batches never cross an epoch boundary (the last partial batch is dropped).
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, start: int = 0, rank: int = 0, world: int = 1):
        per_rank = n // world
        if per_rank < batch_size:
            raise ConfigError(f"the dataset has {n} images, fewer than one batch of {batch_size} "
                              f"per process ({world} processes); use a smaller batch or more data")
        self.n, self.batch_size, self.seed, self.start = n, batch_size, seed, start
        self.rank, self.world = rank, world
        self.per_epoch = per_rank // batch_size

    def __iter__(self):
        epoch, offset = divmod(self.start, self.per_epoch)
        while True:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(self.n, generator=g)[self.rank::self.world]
            for b in range(offset, self.per_epoch):
                yield perm[b * self.batch_size:(b + 1) * self.batch_size].tolist()
            epoch, offset = epoch + 1, 0

    def __len__(self):  # DataLoader asks; an infinite sampler has no end
        return sys.maxsize


# -- distributed helpers ---------------------------------------------------------------

def _dist():
    import torch.distributed as dist
    return dist if dist.is_available() and dist.is_initialized() else None


def _init_distributed(device: torch.device):
    """Start the process group when launched by torchrun (WORLD_SIZE > 1); returns (rank, world)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _all_reduce_grads(module: nn.Module, world: int):
    """Average the gradients of ``module`` over all processes (one flat all-reduce)."""
    dist = _dist()
    if dist is None or world == 1:
        return
    params = [p for p in module.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    for p, g in zip(params, flat.split([q.numel() for q in params])):
        p.grad = g.view_as(p).clone()


def _all_reduce_mean_(t: torch.Tensor, world: int):
    dist = _dist()
    if dist is not None and world > 1:
        dist.all_reduce(t)
        t /= world


# -- the trainer -----------------------------------------------------------------------

class Trainer:
    """Owns G, D, the EMA copy of G, their optimisers, the data stream and the run folder.

    Drive it step by step (``trainer.step()`` returns the step's numbers) or with
    ``trainer.train()``. ``Trainer.resume(path)`` continues a run exactly.

    model: HistoGANConfig (network shapes); cfg: TrainConfig (everything else).
    dataset: optional; by default ``histolib.data.make_dataset(cfg.data, model.resolution)``.
    """

    def __init__(self, model: HistoGANConfig, cfg: TrainConfig = TrainConfig(), dataset=None,
                 run_dir: str | os.PathLike | None = None):
        self.model_cfg, self.cfg = model, cfg
        self.device = pick_device(cfg.device)
        if cfg.amp != "none" and self.device.type != "cuda":
            raise ConfigError(f"TrainConfig.amp={cfg.amp!r} needs a CUDA device; on {self.device.type} use amp='none'")
        self.rank, self.world = _init_distributed(self.device)
        if cfg.batch_size % self.world:
            raise ConfigError(f"TrainConfig.batch_size {cfg.batch_size} is not divisible by the "
                              f"{self.world} processes; use a multiple of {self.world}")
        self.local_batch = cfg.batch_size // self.world
        self.micro = cfg.micro_batch or self.local_batch
        if self.local_batch % self.micro:
            raise ConfigError(f"TrainConfig.micro_batch {self.micro} does not divide the per-process batch "
                              f"{self.local_batch}")

        if dataset is None:
            from .data import make_dataset
            dataset = make_dataset(cfg.data, model.resolution, size=cfg.data_size, seed=cfg.seed)
        self.dataset = dataset
        probe = dataset[0]
        if tuple(probe.shape) != (3, model.resolution, model.resolution):
            raise ConfigError(f"the data gives images of shape {tuple(probe.shape)}, the model needs "
                              f"(3, {model.resolution}, {model.resolution}); set the data's resolution to match")

        torch.manual_seed(cfg.seed)  # same initial weights on every rank
        self.G = HistoGAN(model).to(self.device)
        self.D = Discriminator(model).to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.pl = L.PathLengthPenalty().to(self.device)
        self.d_loss_fn, self.g_loss_fn = L.adversarial_losses(cfg.loss)

        # Adam with the lazy-regularisation correction (StyleGAN2, appendix B)
        def adam(params, interval):
            ratio = interval / (interval + 1) if interval else 1.0
            kw = dict(lr=cfg.lr * ratio, betas=tuple(float(b) ** ratio for b in cfg.betas), eps=1e-8)
            params = list(params)
            try:  # the fused kernel: 3.5x faster than the default on this CPU for 23 M parameters
                return torch.optim.Adam(params, fused=True, **kw)
            except (RuntimeError, TypeError, ValueError):  # a device or an older torch without it
                return torch.optim.Adam(params, **kw)
        d_reg = cfg.r1_interval if (self.r1_gamma > 0 or cfg.real_gp_weight > 0) else 0
        g_reg = cfg.pl_interval if cfg.pl_weight > 0 else 0
        self.opt_d = adam(self.D.parameters(), d_reg)
        self.opt_g = adam(self.G.parameters(), g_reg)
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp == "fp16")

        self.gen = torch.Generator().manual_seed(cfg.seed * 7919 + 17 + self.rank)
        self.step_count = 0
        self.nimg = 0
        self.bad_steps = 0
        self.run_dir = Path(run_dir) if run_dir is not None else Path(cfg.out_dir) / cfg.name
        self._data_iter = None
        self._fixed = None
        self.noise_mode = "random"  # the generator's noise inputs while training ("const" in some tests)
        self._last_penalties: dict = {}

    # -- properties and small helpers
    @property
    def r1_gamma(self) -> float:
        c = self.cfg
        if c.real_gp_weight > 0 or c.r1_interval == 0:
            return 0.0
        return c.r1_gamma if c.r1_gamma is not None else 0.0002 * self.model_cfg.resolution ** 2 / c.batch_size

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _autocast(self):
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.cfg.amp)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def _next_batch(self) -> torch.Tensor:
        if self._data_iter is None:
            sampler = InfiniteBatchSampler(len(self.dataset), self.local_batch, self.cfg.seed,
                                           start=self.step_count, rank=self.rank, world=self.world)
            loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.cfg.workers,
                                                 pin_memory=self.device.type == "cuda",
                                                 persistent_workers=self.cfg.workers > 0,
                                                 # its own generator: creating the iterator must not
                                                 # draw from the global RNG (exact resume)
                                                 generator=torch.Generator().manual_seed(self.cfg.seed))
            self._data_iter = iter(loader)
        return next(self._data_iter).to(self.device, non_blocking=True)

    def histograms(self, images: torch.Tensor) -> torch.Tensor:
        """RGB-uv histograms of network images [B, 3, H, W] in [-1, 1], in float32."""
        m = self.model_cfg
        return rgb_uv_histogram(to_unit(images.float()), bins=m.hist_bins, sigma=m.hist_sigma)

    def _z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.model_cfg.z_dim, generator=self.gen).to(self.device)

    # -- one step
    def step(self) -> dict:
        """One D step and one G step. Returns the step's numbers (losses, D outputs, ...)."""
        cfg = self.cfg
        real = self._next_batch()
        with torch.no_grad():
            targets = random_targets(self.histograms(real), generator=self.gen, mix=cfg.mix_targets).to(self.device)
        z = self._z(self.local_batch)
        do_dreg = cfg.r1_interval > 0 and (self.r1_gamma > 0 or cfg.real_gp_weight > 0) \
            and self.step_count % cfg.r1_interval == 0
        do_pl = cfg.pl_weight > 0 and cfg.pl_interval > 0 and self.step_count % cfg.pl_interval == 0

        stats = self.d_backward(real, z, targets, do_dreg)
        d_ok = self._optimizer_step(self.D, self.opt_d, stats["loss_d"])
        stats.update(self.g_backward(z, targets, do_pl))
        g_ok = self._optimizer_step(self.G, self.opt_g, stats["loss_g"] + stats["loss_hist"])
        self.G.requires_grad_(False)
        if self.world > 1:  # buffers that move with the data: keep them equal on every rank
            _all_reduce_mean_(self.G.mapping.w_avg, self.world)
            _all_reduce_mean_(self.pl.pl_mean, self.world)

        # the lazy penalties run every few steps: report their latest values on every row
        self._last_penalties.update({k: stats[k] for k in ("r1", "gp", "pl") if k in stats})
        stats.update(self._last_penalties)
        self.nimg += cfg.batch_size
        self.step_count += 1
        self._update_ema()
        skipped = not (d_ok and g_ok)
        self.bad_steps = self.bad_steps + 1 if skipped else 0
        stats.update(step=self.step_count, kimg=self.nimg / 1000, skipped=int(skipped),
                     hellinger=stats["loss_hist"] / cfg.hist_alpha if cfg.hist_alpha else float("nan"))
        return stats

    def _micro_batches(self, *tensors):
        mb = self.micro
        n = len(tensors[0]) // mb
        for i in range(n):
            yield n, [t[i * mb:(i + 1) * mb] for t in tensors]

    def d_backward(self, real: torch.Tensor, z: torch.Tensor, targets: torch.Tensor, do_reg: bool) -> dict:
        """Zero D's gradients and accumulate the D loss's gradients over the micro-batches.

        real [B, 3, R, R] in [-1, 1]; z [B, z_dim]; targets [B, 3, bins, bins].
        G is frozen. With ``do_reg`` the lazy R1 (or the reference code's gradient penalty)
        is added, scaled by its interval. Returns the mean losses and D outputs.
        """
        cfg = self.cfg
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        self.opt_d.zero_grad(set_to_none=True)
        stats = {"loss_d": 0.0, "d_real": 0.0, "d_fake": 0.0}
        for n, (real, z, target) in self._micro_batches(real, z, targets):
            with self._autocast():
                with torch.no_grad():
                    fake = self.G(z, target, noise_mode=self.noise_mode)
                fake_logits = self.D(fake)
            real = real.detach().requires_grad_(do_reg)
            if do_reg:  # the penalty differentiates D twice: keep that pass in float32
                real_logits = self.D(real)
            else:
                with self._autocast():
                    real_logits = self.D(real)
            loss = self.d_loss_fn(real_logits.float(), fake_logits.float())
            if do_reg and cfg.real_gp_weight > 0:
                pen = L.real_gradient_penalty(real_logits, real, weight=cfg.real_gp_weight)
                stats["gp"] = stats.get("gp", 0.0) + pen.item() / n
                loss = loss + pen * cfg.r1_interval
            elif do_reg:
                r1 = L.r1_penalty(real_logits, real)
                stats["r1"] = stats.get("r1", 0.0) + r1.item() / n
                loss = loss + r1 * (self.r1_gamma / 2) * cfg.r1_interval
            self.scaler.scale(loss / n).backward()
            stats["loss_d"] += loss.item() / n
            stats["d_real"] += real_logits.detach().float().mean().item() / n
            stats["d_fake"] += fake_logits.detach().float().mean().item() / n
        return stats

    def g_backward(self, z: torch.Tensor, targets: torch.Tensor, do_pl: bool) -> dict:
        """Zero G's gradients and accumulate the G loss's gradients over the micro-batches.

        z [B, z_dim]; targets [B, 3, bins, bins]. D is frozen. The loss is the adversarial
        term plus ``hist_alpha`` * Hellinger(target, hist(fake)); with ``do_pl`` also the
        path-length penalty, scaled by its interval. Returns the mean losses and the fake range.
        """
        cfg = self.cfg
        self.G.requires_grad_(True)
        self.D.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        stats = {"loss_g": 0.0, "loss_hist": 0.0, "fake_min": math.inf, "fake_max": -math.inf}
        for n, (z, target) in self._micro_batches(z, targets):
            with self._autocast():
                fake, w = self.G(z, target, return_w=True, update_w_avg=True, noise_mode=self.noise_mode)
                adv = self.g_loss_fn(self.D(fake).float())
            hist = L.histogram_loss(target, fake, alpha=cfg.hist_alpha, sigma=self.model_cfg.hist_sigma)
            loss = adv + hist
            if cfg.range_weight > 0:
                rng = L.range_penalty(fake.float())
                stats["range"] = stats.get("range", 0.0) + rng.item() / n
                loss = loss + cfg.range_weight * rng
            if do_pl:
                pen = self.pl(fake.float(), w, generator=self.gen)
                stats["pl"] = stats.get("pl", 0.0) + pen.item() / n
                loss = loss + pen * cfg.pl_weight * cfg.pl_interval
            self.scaler.scale(loss / n).backward()
            stats["loss_g"] += adv.item() / n
            stats["loss_hist"] += hist.item() / n
            stats["fake_min"] = min(stats["fake_min"], fake.detach().min().item())
            stats["fake_max"] = max(stats["fake_max"], fake.detach().max().item())
        return stats

    def _optimizer_step(self, net: nn.Module, opt: torch.optim.Optimizer, loss_value: float) -> bool:
        """Average gradients over processes, then step unless something is not finite."""
        _all_reduce_grads(net, self.world)
        finite = torch.tensor(float(math.isfinite(loss_value)), device=self.device)
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        if grads and self.cfg.amp != "fp16":  # (fp16: the GradScaler checks gradients itself)
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))
            finite = finite * torch.isfinite(norm)
        _all_reduce_mean_(finite, self.world)  # every rank takes the same decision
        if finite.item() < 1:
            opt.zero_grad(set_to_none=True)
            if self.cfg.amp == "fp16":
                self.scaler.update()
            return False
        self.scaler.step(opt)
        self.scaler.update()
        return True

    @torch.no_grad()
    def _update_ema(self):
        cfg = self.cfg
        half_life = cfg.ema_half_life
        if cfg.ema_rampup is not None:
            half_life = min(half_life, self.nimg * cfg.ema_rampup)
        beta = 0.5 ** (cfg.batch_size / max(half_life, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.lerp_(p, 1 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # -- the loop
    def train(self, steps: int | None = None, progress: bool = True) -> list[dict]:
        """Train until ``steps`` steps in total (default: cfg.steps); returns the logged rows."""
        cfg = self.cfg
        total = cfg.steps if steps is None else steps
        rows = []
        bar = None
        if progress and self.is_main:
            from tqdm.auto import tqdm
            bar = tqdm(total=total, initial=self.step_count, unit="step", dynamic_ncols=True)
        t0, n0 = time.perf_counter(), self.nimg
        try:
            while self.step_count < total:
                stats = self.step()
                if stats["skipped"]:
                    self.log({"step": self.step_count, "event": "skipped non-finite step"})
                    if self.bad_steps >= cfg.max_bad_steps:
                        self._recover()
                    continue
                now = time.perf_counter()
                stats["img_s"] = (self.nimg - n0) / max(now - t0, 1e-9)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(img_s=f"{stats['img_s']:.1f}", D=f"{stats['loss_d']:.3f}",
                                    G=f"{stats['loss_g']:.3f}", hist=f"{stats['hellinger']:.3f}", refresh=False)
                if cfg.log_every and (self.step_count % cfg.log_every == 0 or self.step_count == 1):
                    rows.append(stats)
                    self.log(stats)
                if cfg.sample_every and self.step_count % cfg.sample_every == 0:
                    self.save_samples()
                if cfg.checkpoint_every and self.step_count % cfg.checkpoint_every == 0:
                    self.save()
        finally:
            if bar is not None:
                bar.close()
        if cfg.checkpoint_every:
            self.save()
        return rows

    def _recover(self):
        from .checkpoint import latest_checkpoint
        path = latest_checkpoint(self.run_dir / "checkpoints")
        if path is None:
            raise RuntimeError(f"{self.bad_steps} non-finite steps in a row and no checkpoint to go back to; "
                               f"lower the learning rate (now {self.cfg.lr}) or check the data range")
        msg = f"{self.bad_steps} non-finite steps in a row: reloading {path}"
        print(f"histolib.train: {msg}", file=sys.stderr)
        self.log({"step": self.step_count, "event": msg})
        self.load_state(load_checkpoint(path, map_location="cpu"))
        self.bad_steps = 0

    # -- outputs
    def log(self, row: dict):
        if not self.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "log.jsonl", "a") as f:
            f.write(json.dumps({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}) + "\n")

    def fixed_inputs(self):
        """Fixed latents and target histograms for comparable sample grids across a run."""
        if self._fixed is None:
            g = torch.Generator().manual_seed(12345)
            z = torch.randn(self.cfg.n_sample_z, self.model_cfg.z_dim, generator=g)
            idx = torch.randperm(len(self.dataset), generator=g)[: self.cfg.n_sample_targets].tolist()
            targets_img = torch.stack([self.dataset[i] for i in idx])
            self._fixed = (z.to(self.device), targets_img.to(self.device), self.histograms(targets_img.to(self.device)))
        return self._fixed

    @torch.no_grad()
    def sample_grid(self, ema: bool = True) -> torch.Tensor:
        """[rows * (1 + n_z), 3, R, R] in [-1, 1]: each row a target image, then its fakes for fixed z."""
        G = self.G_ema if ema else self.G
        z, target_imgs, hists = self.fixed_inputs()
        rows = []
        for img, h in zip(target_imgs, hists):
            fakes = G(z, h[None].expand(len(z), -1, -1, -1), noise_mode="const")
            rows.append(torch.cat([img[None], fakes.clamp(-1, 1)]))
        return torch.cat(rows)

    def save_samples(self) -> Path | None:
        if not self.is_main:
            return None
        from torchvision.utils import save_image
        path = self.run_dir / "samples" / f"step_{self.step_count:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(self.sample_grid().float().cpu(), path, nrow=1 + self.cfg.n_sample_z,
                   normalize=True, value_range=(-1, 1))
        return path

    def state_dict(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "model_config": self.model_cfg.to_dict(),
            "train_config": self.cfg.to_dict(),
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "pl": self.pl.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step_count, "nimg": self.nimg,
            "rng": {"torch": torch.get_rng_state(), "trainer": self.gen.get_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        }

    def load_state(self, state: dict):
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.pl.load_state_dict(state["pl"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step_count, self.nimg = int(state["step"]), int(state["nimg"])
        torch.set_rng_state(state["rng"]["torch"])
        self.gen.set_state(state["rng"]["trainer"])
        if state["rng"].get("cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self._data_iter = None  # restart the data stream at the saved position

    def save(self, path: str | os.PathLike | None = None) -> Path | None:
        """Write a checkpoint (atomically) and keep the newest ``keep_checkpoints``; rank 0 only."""
        if not self.is_main:
            return None
        folder = self.run_dir / "checkpoints"
        path = Path(path) if path is not None else folder / f"step_{self.step_count:07d}.pt"
        save_checkpoint(self.state_dict(), path)
        if path.parent == folder and self.cfg.keep_checkpoints:
            prune_checkpoints(folder, self.cfg.keep_checkpoints)
        return path

    @classmethod
    def resume(cls, path: str | os.PathLike, dataset=None, run_dir=None, **overrides) -> "Trainer":
        """A trainer continuing the run saved at ``path`` (a file, or a folder of checkpoints).

        overrides: TrainConfig fields to change (e.g. ``steps`` to train longer, ``device``).
        """
        state = load_checkpoint(path, required=("format", "model_config", "train_config", "G"))
        if state["format"] != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path}: unknown checkpoint format {state['format']!r}")
        model = HistoGANConfig.from_dict(state["model_config"])
        cfg = dataclasses.replace(TrainConfig.from_dict(state["train_config"]), **overrides)
        if run_dir is None:  # a run's folder holds checkpoints/; otherwise write next to the file
            folder = Path(path) if Path(path).is_dir() else Path(path).parent
            run_dir = folder.parent if folder.name == "checkpoints" else folder
        trainer = cls(model, cfg, dataset=dataset, run_dir=run_dir)
        trainer.load_state(state)  # load_state_dict copies tensors to each module's / optimiser's device
        return trainer


def read_log(path: str | os.PathLike) -> list[dict]:
    """The numeric rows of a run's ``log.jsonl`` (a run folder or the file itself); events are left out."""
    path = Path(path)
    if path.is_dir():
        path = path / "log.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no training log at {path}")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if "event" not in r]


# -- command line ----------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m histolib.train",
        description="Train HistoGAN. With no arguments: the toy preset on built-in toy faces, on the CPU, "
                    "writing checkpoints, samples and a log to runs/<name>/.",
        epilog="Several GPUs: torchrun --nproc_per_node N -m histolib.train [options] "
               "(--batch is the total over all GPUs).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = TrainConfig()
    g = p.add_argument_group("data and model")
    g.add_argument("--data", default=d.data, help="'toy' (built in), 'anime' (Kaggle anime faces, downloaded to "
                   "data/anime), or a folder of images")
    g.add_argument("--data-size", type=int, default=d.data_size, help="number of toy faces")
    g.add_argument("--preset", choices=("toy", "paper"), default="toy", help="network size (HistoGANConfig preset)")
    g.add_argument("--resolution", type=int, default=None, help="image size in pixels (default: the preset's)")
    g.add_argument("--hist-blocks", type=int, default=None,
                   help="how many of the last synthesis blocks the histogram drives (default: the preset's, 2 as "
                        "in the paper)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--batch", type=int, default=d.batch_size, help="images per step (over all processes)")
    g.add_argument("--micro-batch", type=int, default=None, help="gradient accumulation: split each batch into "
                   "micro-batches of this size")
    g.add_argument("--steps", type=int, default=None, help=f"total optimiser steps, counting resumed ones "
                   f"(default: {d.steps}; with --resume: the run's own)")
    g.add_argument("--kimg", type=float, default=None, help="train for this many thousand images instead of --steps")
    g.add_argument("--recipe", choices=("stylegan2", "reference"), default="stylegan2",
                   help="stylegan2: non-saturating loss + lazy R1, Adam(0.002, (0, 0.99)); "
                        "reference: the HistoGAN code's hinge loss + gradient penalty on reals, Adam(2e-4)")
    g.add_argument("--lr", type=float, default=None, help="learning rate (default: the recipe's)")
    g.add_argument("--r1-gamma", type=float, default=None, help="R1 weight (default: 0.0002 * resolution^2 / batch)")
    g.add_argument("--hist-alpha", type=float, default=None,
                   help="weight of the histogram loss (default: 10 for the toy preset, where it speeds up "
                        "learning colour control; the paper's 2 for the paper preset)")
    g.add_argument("--range-weight", type=float, default=None,
                   help=f"weight of the penalty on generated pixels outside [-1, 1] (default: {d.range_weight})")
    g.add_argument("--single-targets", action="store_true",
                   help="train on each real image's own histogram instead of mixes of two images' histograms "
                        "(the reference scheme); the evaluation's targets are single images' histograms")
    g.add_argument("--seed", type=int, default=d.seed)
    g = p.add_argument_group("hardware")
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when present)")
    g.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none", help="mixed precision (CUDA only)")
    g.add_argument("--workers", type=int, default=d.workers, help="data-loading processes")
    g = p.add_argument_group("outputs")
    g.add_argument("--out", default=d.out_dir, help="folder holding the runs")
    g.add_argument("--name", default=None, help="run name (default: <data>-<preset>-<resolution>)")
    g.add_argument("--resume", default=None, help="a checkpoint file or a run's checkpoints folder to continue "
                   "(the run's settings are kept; --steps/--kimg, --device, --hist-alpha, --range-weight, "
                   "--r1-gamma and --single-targets may change)")
    g.add_argument("--log-every", type=int, default=d.log_every, help="steps between log rows")
    g.add_argument("--sample-every", type=int, default=d.sample_every, help="steps between sample grids")
    g.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, help="steps between checkpoints")
    g.add_argument("--keep", type=int, default=d.keep_checkpoints, help="checkpoints to keep")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _configs_from_args(args) -> tuple[HistoGANConfig, TrainConfig]:
    preset = HistoGANConfig.toy if args.preset == "toy" else HistoGANConfig.paper
    model_fields = {"resolution": args.resolution, "n_hist_blocks": args.hist_blocks}
    model = preset(**{k: v for k, v in model_fields.items() if v is not None})
    data = args.data
    name = args.name or f"{Path(data).name if data not in ('toy', 'anime') else data}-{args.preset}-{model.resolution}"
    alpha = args.hist_alpha if args.hist_alpha is not None else (10.0 if args.preset == "toy" else 2.0)
    fields = dict(data=data, data_size=args.data_size, batch_size=args.batch, micro_batch=args.micro_batch,
                  steps=args.steps if args.steps is not None else TrainConfig.steps, seed=args.seed, r1_gamma=args.r1_gamma, hist_alpha=alpha,
                  amp=args.amp, device=args.device, workers=args.workers, out_dir=args.out, name=name,
                  log_every=args.log_every, sample_every=args.sample_every, checkpoint_every=args.checkpoint_every,
                  keep_checkpoints=args.keep)
    if args.lr is not None:
        fields["lr"] = args.lr
    if args.range_weight is not None:
        fields["range_weight"] = args.range_weight
    if args.single_targets:
        fields["mix_targets"] = False
    if args.kimg is not None:
        fields["steps"] = max(1, math.ceil(args.kimg * 1000 / args.batch))
    cfg = TrainConfig.reference_recipe(**fields) if args.recipe == "reference" else TrainConfig(**fields)
    return model, cfg


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.resume:
            overrides = {}
            if args.steps is not None:
                overrides["steps"] = args.steps
            if args.device:
                overrides["device"] = args.device
            if args.hist_alpha is not None:  # e.g. a last phase that weighs colour fidelity more
                overrides["hist_alpha"] = args.hist_alpha
            if args.range_weight is not None:
                overrides["range_weight"] = args.range_weight
            if args.r1_gamma is not None:  # e.g. a smoother discriminator for a larger --hist-alpha
                overrides["r1_gamma"] = args.r1_gamma
            if args.single_targets:
                overrides["mix_targets"] = False
            trainer = Trainer.resume(args.resume, **overrides)
            if args.kimg is not None:  # in images of the run's own batch size
                trainer.cfg = dataclasses.replace(trainer.cfg, steps=math.ceil(args.kimg * 1000 / trainer.cfg.batch_size))
        else:
            model, cfg = _configs_from_args(args)
            trainer = Trainer(model, cfg)
    except (ValueError, CheckpointError, FileNotFoundError, RuntimeError) as exc:
        parser.error(str(exc).splitlines()[0])  # one line, exit status 2
    if trainer.is_main:
        print(f"histolib.train: {trainer.model_cfg.resolution} px, {sum(p.numel() for p in trainer.G.parameters()):,} "
              f"G parameters, batch {trainer.cfg.batch_size} on {trainer.world} x {trainer.device}, "
              f"from step {trainer.step_count} to {trainer.cfg.steps} -> {trainer.run_dir}")
    trainer.train(progress=not args.no_progress)
    if trainer.is_main:
        print(f"histolib.train: done at step {trainer.step_count}; checkpoints in {trainer.run_dir / 'checkpoints'}")
    dist = _dist()
    if dist is not None:
        dist.barrier()
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
