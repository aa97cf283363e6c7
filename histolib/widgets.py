"""Sliders for the notebooks (ipywidgets and matplotlib are imported here, on use).

Each widget is a thin view over a pure function: :class:`InterpolationSlider` exposes
``render(t)`` (no side effects; the same t gives the same frame) and the ``slider`` that
calls it, so a notebook (or a test) can move the slider from Python and check what the
view now shows.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import torch

from .histogram import hellinger_distance, interpolate_histograms, rgb_uv_histogram
from .recolor import recolor

__all__ = ["Frame", "InterpolationSlider", "interpolation_slider", "ControlFrame", "TruncationFrame",
           "ColourControlSlider", "TruncationSlider", "colour_control_slider", "truncation_slider"]


@dataclass(frozen=True)
class Frame:
    """What the slider shows at one t.

    t: the mixing weight in [0, 1]; hist: [3, bins, bins], (1 - t) h1 + t h2;
    image: [3, H, W] in [0, 1], image1 recoloured towards that mix;
    distance: Hellinger distance between ``hist`` and the histogram of ``image``."""

    t: float
    hist: torch.Tensor
    image: torch.Tensor
    distance: float


class InterpolationSlider:
    """Interpolate between two images' colour histograms and recolour image1 along the way.

    image1, image2: [3, H, W] in [0, 1]. The recolourings (gradient descent on the pixels,
    :func:`histolib.recolor.recolor`) are computed once, for ``n_frames`` evenly spaced t,
    in one batch, and cached: moving the slider only looks them up, so it stays responsive.
    The slider snaps to those t. ``recolor_kwargs`` go to ``recolor`` (steps, lr, sigma,
    smoothness); the recolouring compares histograms at its own ``sigma``, while
    ``Frame.hist`` and the picture use the standard histogram (``bins``, sigma 0.02).

    Attributes: ``slider`` (ipywidgets.FloatSlider), ``view`` (ipywidgets.Image, a PNG of
    the current frame), ``widget`` (both, stacked: display this), ``current`` (the Frame
    on show), ``frames`` (the cached recoloured images [n_frames, 3, H, W]), ``ts``.
    """

    def __init__(self, image1: torch.Tensor, image2: torch.Tensor, n_frames: int = 11, bins: int = 64,
                 steps: int = 100, lr: float = 0.1, sigma: float = 0.1, smoothness: float = 5.0):
        import ipywidgets

        for name, im in (("image1", image1), ("image2", image2)):
            if not isinstance(im, torch.Tensor) or im.ndim != 3 or im.shape[0] != 3:
                raise ValueError(f"{name}: expected one image [3, H, W] in [0, 1], got {getattr(im, 'shape', im)}")
        if not (isinstance(n_frames, int) and n_frames >= 2):
            raise ValueError(f"n_frames: expected an integer >= 2, got {n_frames!r}")
        self.image1, self.image2 = image1.detach(), image2.detach()
        self.bins = bins
        self.ts = torch.linspace(0, 1, n_frames, dtype=torch.float64)
        self.h1 = rgb_uv_histogram(self.image1, bins=bins)
        self.h2 = rgb_uv_histogram(self.image2, bins=bins)
        # the recolouring targets, at the recolouring's own kernel width
        s1 = rgb_uv_histogram(self.image1, bins=bins, sigma=sigma)
        s2 = rgb_uv_histogram(self.image2, bins=bins, sigma=sigma)
        targets = interpolate_histograms(s1[None], s2[None], self.ts.to(s1.dtype))
        start = self.image1[None].expand(n_frames, -1, -1, -1)
        self.frames = recolor(start, targets, steps=steps, lr=lr, sigma=sigma, smoothness=smoothness).images
        self.frames[0] = self.image1                       # t = 0: the target is image1's own histogram

        self._png: dict[int, bytes] = {}
        self.slider = ipywidgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=1.0 / (n_frames - 1),
                                             description="t", continuous_update=True, readout_format=".2f")
        self.view = ipywidgets.Image(format="png")
        self.widget = ipywidgets.VBox([self.slider, self.view])
        self.current: Frame | None = None
        self.slider.observe(lambda change: self._show(change["new"]), names="value")
        self._show(self.slider.value)

    def _index(self, t: float) -> int:
        if not 0.0 <= float(t) <= 1.0:
            raise ValueError(f"t: expected a number in [0, 1], got {t!r}")
        return int(round(float(t) * (len(self.ts) - 1)))

    def render(self, t: float) -> Frame:
        """The frame for t in [0, 1] (snapped to the nearest cached t). Pure: no side effects."""
        k = self._index(t)
        t_k = float(self.ts[k])
        hist = interpolate_histograms(self.h1, self.h2, t_k)
        image = self.frames[k]
        dist = float(hellinger_distance(hist, rgb_uv_histogram(image, bins=self.bins)))
        return Frame(t=t_k, hist=hist, image=image, distance=dist)

    def png(self, frame: Frame) -> bytes:
        """A PNG picture of a frame: the recoloured image and the three planes of its target."""
        import matplotlib.pyplot as plt

        from .viz import show_histogram

        fig = show_histogram(frame.hist, frame.image,
                             title=f"t = {frame.t:.2f}: target (1 - t) h1 + t h2; image 1 recoloured towards it "
                                   f"(Hellinger {frame.distance:.3f})", scale=0.8)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=72)
        plt.close(fig)
        return buf.getvalue()

    def _show(self, t: float) -> None:
        frame = self.render(t)
        k = self._index(frame.t)
        if k not in self._png:
            self._png[k] = self.png(frame)
        self.current = frame
        self.view.value = self._png[k]

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def interpolation_slider(image1: torch.Tensor, image2: torch.Tensor, **kwargs) -> InterpolationSlider:
    """Build an :class:`InterpolationSlider` (see there for the arguments). Display it by
    leaving it as the last expression of a cell, or ``display(s.widget)``."""
    return InterpolationSlider(image1, image2, **kwargs)


# ----------------------------------------------------------------------------------------
# Sliders over a trained generator: colour control (target interpolation) and truncation

@dataclass(frozen=True)
class ControlFrame:
    """What the colour-control slider shows at one t.

    t: the mixing weight in [0, 1]; hist: [3, bins, bins], the target (1 - t) h1 + t h2;
    images: [B, 3, R, R] in about [-1, 1], G's images for the fixed z and that target;
    distances: [B], Hellinger(hist, histogram of each image); distance: their mean;
    distance_to_start / distance_to_end: mean Hellinger of the images' histograms to h1 / h2."""

    t: float
    hist: torch.Tensor
    images: torch.Tensor
    distances: torch.Tensor
    distance: float
    distance_to_start: float
    distance_to_end: float


@dataclass(frozen=True)
class TruncationFrame:
    """What the truncation slider shows at one psi.

    psi: the truncation in [psi_min, psi_max] (1 = none, 0 = every z becomes the average w);
    hist: [3, bins, bins] the fixed target; images: [B, 3, R, R] in about [-1, 1];
    distance: mean Hellinger(hist, histogram of each image);
    spread: mean over pixels of the standard deviation across the B images (0 = all alike)."""

    psi: float
    hist: torch.Tensor
    images: torch.Tensor
    distance: float
    spread: float


def _check_generator_inputs(G, z: torch.Tensor, n_frames: int) -> None:
    cfg = getattr(G, "config", None)
    if cfg is None or not callable(G):
        raise ValueError(f"G: expected a HistoGAN (with .config), got {type(G).__name__}")
    if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != cfg.z_dim or len(z) < 1:
        raise ValueError(f"z: expected latents [B >= 1, {cfg.z_dim}], got {getattr(z, 'shape', z)}")
    if not (isinstance(n_frames, int) and not isinstance(n_frames, bool) and n_frames >= 2):
        raise ValueError(f"n_frames: expected an integer >= 2, got {n_frames!r}")


def _generator_hist(G, image: torch.Tensor, name: str) -> torch.Tensor:
    """[3, bins, bins]: the histogram G was trained with (its bins and sigma) of an image in [0, 1]."""
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"{name}: expected one image [3, H, W] in [0, 1], got {getattr(image, 'shape', image)}")
    if image.min() < 0 or image.max() > 1:
        raise ValueError(f"{name}: expected values in [0, 1] (use histolib.images.to_unit on [-1, 1] images), "
                         f"got [{image.min().item():.3g}, {image.max().item():.3g}]")
    return rgb_uv_histogram(image.detach().float().cpu(), bins=G.config.hist_bins, sigma=G.config.hist_sigma)


def _hist_of(G, images: torch.Tensor) -> torch.Tensor:
    """[B, 3, bins, bins]: histograms of generated images ([-1, 1], clamped) at G's bins and sigma."""
    from .images import to_unit

    return rgb_uv_histogram(to_unit(images.float().clamp(-1, 1)), bins=G.config.hist_bins, sigma=G.config.hist_sigma)


class _GeneratorSlider:
    """Shared mechanics: cached frames for evenly spaced values, a FloatSlider that snaps
    to them, and a PNG view (image grid + the target's three histogram planes)."""

    _name = "t"

    def _build_widget(self, lo: float, hi: float, start: float) -> None:
        import ipywidgets

        self._png: dict[int, bytes] = {}
        n = len(self.values)
        self.slider = ipywidgets.FloatSlider(value=start, min=lo, max=hi, step=(hi - lo) / (n - 1),
                                             description=self._name, continuous_update=True, readout_format=".2f")
        self.view = ipywidgets.Image(format="png")
        self.widget = ipywidgets.VBox([self.slider, self.view])
        self.current = None
        self.slider.observe(lambda change: self._show(change["new"]), names="value")
        self._show(self.slider.value)

    def _index(self, value: float) -> int:
        lo, hi = float(self.values[0]), float(self.values[-1])
        if not isinstance(value, (int, float)) or not lo - 1e-9 <= float(value) <= hi + 1e-9:
            raise ValueError(f"{self._name}: expected a number in [{lo:g}, {hi:g}], got {value!r}")
        return int(torch.argmin((self.values - float(value)).abs()))

    def _show(self, value: float) -> None:
        frame = self.render(value)
        k = self._index(value)
        if k not in self._png:
            self._png[k] = self.png(frame)
        self.current = frame
        self.view.value = self._png[k]

    def _figure_png(self, images: torch.Tensor, hist: torch.Tensor, title: str) -> bytes:
        """PNG: the images in a row (up to 6 per row) above the target's three u-v planes."""
        import matplotlib.pyplot as plt

        from .viz import _draw_plane, _log_norm, image_grid

        grid = image_grid(images, nrow=min(len(images), 6), value_range=(-1, 1))
        fig = plt.figure(figsize=(7.5, 5.0), layout="constrained")
        gs = fig.add_gridspec(2, 3, height_ratios=[1.3, 1])
        ax = fig.add_subplot(gs[0, :])
        ax.imshow(grid.permute(1, 2, 0).numpy())
        ax.axis("off")
        norm = _log_norm(hist)
        for c in range(3):
            _draw_plane(fig.add_subplot(gs[1, c]), hist[c], norm, (-3.0, 3.0), c)
        fig.suptitle(title, fontsize=10)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=72)
        plt.close(fig)
        return buf.getvalue()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


class ColourControlSlider(_GeneratorSlider):
    """Move a generator's target histogram from one image's colours to another's, z fixed.

    G: a HistoGAN (``G(z, hist, ...)``, with ``G.config``). target1, target2: [3, H, W] in
    [0, 1]; their histograms h1, h2 use G's bins and sigma. z: [B, z_dim], the fixed latents
    (the content). For ``n_frames`` evenly spaced t in [0, 1] the images
    ``G(z, (1 - t) h1 + t h2, noise_mode=noise_mode, truncation_psi=truncation_psi)`` are
    generated once, in one batch per frame, and cached; the slider snaps to those t.

    Attributes: ``slider`` (ipywidgets.FloatSlider), ``view`` (ipywidgets.Image: a PNG of the
    images and the target's three planes), ``widget`` (both: display this), ``current``
    (the ControlFrame on show), ``ts`` [n_frames], ``frames`` [n_frames, B, 3, R, R], ``h1``, ``h2``.
    """

    _name = "t"

    @torch.no_grad()
    def __init__(self, G, target1: torch.Tensor, target2: torch.Tensor, z: torch.Tensor, n_frames: int = 11,
                 truncation_psi: float = 1.0, noise_mode: str = "const"):
        _check_generator_inputs(G, z, n_frames)
        self.G = G
        self.h1 = _generator_hist(G, target1, "target1")
        self.h2 = _generator_hist(G, target2, "target2")
        self.z = z.detach().cpu()
        self.ts = self.values = torch.linspace(0, 1, n_frames, dtype=torch.float64)
        device = next(G.parameters()).device
        frames, hists = [], []
        for t in self.ts.tolist():
            h = interpolate_histograms(self.h1, self.h2, t)
            hists.append(h)
            frames.append(G(self.z.to(device), h[None].expand(len(self.z), -1, -1, -1).to(device),
                            truncation_psi=truncation_psi, noise_mode=noise_mode).float().cpu())
        self.hists = torch.stack(hists)                     # [n_frames, 3, bins, bins]
        self.frames = torch.stack(frames)                   # [n_frames, B, 3, R, R]
        self._frame_hists = _hist_of(G, self.frames.flatten(0, 1)).unflatten(0, self.frames.shape[:2])
        self._build_widget(0.0, 1.0, 0.0)

    def render(self, t: float) -> ControlFrame:
        """The frame for t in [0, 1] (snapped to the nearest cached t). Pure: no side effects."""
        k = self._index(t)
        hist, got = self.hists[k], self._frame_hists[k]
        d = hellinger_distance(hist, got)
        return ControlFrame(t=float(self.ts[k]), hist=hist, images=self.frames[k], distances=d,
                            distance=float(d.mean()),
                            distance_to_start=float(hellinger_distance(self.h1, got).mean()),
                            distance_to_end=float(hellinger_distance(self.h2, got).mean()))

    def png(self, frame: ControlFrame) -> bytes:
        """A PNG picture of a frame: the generated images and the three planes of the target."""
        return self._figure_png(frame.images, frame.hist,
                                f"t = {frame.t:.2f}: target (1 - t) h1 + t h2; mean Hellinger "
                                f"to it {frame.distance:.3f}")


class TruncationSlider(_GeneratorSlider):
    """Pull the latents towards the average face: w <- w_avg + psi (w - w_avg), one target.

    G: a HistoGAN; z: [B, z_dim]; hist: [3, bins, bins] (G's bins), the fixed colour target.
    The images for ``n_frames`` evenly spaced psi in [psi_min, psi_max] are generated once
    and cached. psi = 1 is no truncation; psi = 0 gives every z the same w (w_avg), so all B
    images are the same face: ``TruncationFrame.spread`` falls to 0.

    Attributes as :class:`ColourControlSlider`, with ``psis`` [n_frames] instead of ``ts``.
    """

    _name = "psi"

    @torch.no_grad()
    def __init__(self, G, z: torch.Tensor, hist: torch.Tensor, n_frames: int = 11, psi_min: float = 0.0,
                 psi_max: float = 1.0, noise_mode: str = "const"):
        _check_generator_inputs(G, z, n_frames)
        bins = G.config.hist_bins
        if not isinstance(hist, torch.Tensor) or tuple(hist.shape) != (3, bins, bins):
            raise ValueError(f"hist: expected one histogram [3, {bins}, {bins}] (G's bins), "
                             f"got {getattr(hist, 'shape', hist)}")
        if not (isinstance(psi_min, (int, float)) and isinstance(psi_max, (int, float)) and psi_min < psi_max):
            raise ValueError(f"psi_min, psi_max: expected two numbers with psi_min < psi_max, got {psi_min!r}, {psi_max!r}")
        self.G = G
        self.hist = hist.detach().float().cpu()
        self.z = z.detach().cpu()
        self.psis = self.values = torch.linspace(psi_min, psi_max, n_frames, dtype=torch.float64)
        device = next(G.parameters()).device
        hb = self.hist[None].expand(len(self.z), -1, -1, -1).to(device)
        self.frames = torch.stack([G(self.z.to(device), hb, truncation_psi=psi, noise_mode=noise_mode).float().cpu()
                                   for psi in self.psis.tolist()])          # [n_frames, B, 3, R, R]
        self._distances = hellinger_distance(
            self.hist, _hist_of(G, self.frames.flatten(0, 1)).unflatten(0, self.frames.shape[:2])).mean(1)
        self._build_widget(float(psi_min), float(psi_max), float(psi_max))

    def render(self, psi: float) -> TruncationFrame:
        """The frame for psi (snapped to the nearest cached psi). Pure: no side effects."""
        k = self._index(psi)
        images = self.frames[k]
        spread = float(images.std(dim=0, unbiased=False).mean()) if len(images) > 1 else 0.0
        return TruncationFrame(psi=float(self.psis[k]), hist=self.hist, images=images,
                               distance=float(self._distances[k]), spread=spread)

    def png(self, frame: TruncationFrame) -> bytes:
        """A PNG picture of a frame: the generated images and the three planes of the target."""
        return self._figure_png(frame.images, frame.hist,
                                f"psi = {frame.psi:.2f}: spread {frame.spread:.3f}, mean Hellinger "
                                f"to the target {frame.distance:.3f}")


def colour_control_slider(G, target1: torch.Tensor, target2: torch.Tensor, z: torch.Tensor,
                          n_frames: int = 11, **kwargs) -> ColourControlSlider:
    """Build a :class:`ColourControlSlider` (see there for the arguments): G's images for
    fixed latents z while the target moves from target1's histogram to target2's."""
    return ColourControlSlider(G, target1, target2, z, n_frames=n_frames, **kwargs)


def truncation_slider(G, z: torch.Tensor, hist: torch.Tensor, n_frames: int = 11, **kwargs) -> TruncationSlider:
    """Build a :class:`TruncationSlider` (see there for the arguments): G's images for fixed
    latents z and one target histogram while psi moves from psi_min (0) to psi_max (1)."""
    return TruncationSlider(G, z, hist, n_frames=n_frames, **kwargs)
