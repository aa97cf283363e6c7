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

__all__ = ["Frame", "InterpolationSlider", "interpolation_slider"]


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
