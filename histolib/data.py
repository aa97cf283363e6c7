"""The three image sources of the series, and a sample photo.

    ToyFaces(size, resolution=64, seed=0)   built in, no download: procedurally drawn
                                            cartoon faces with wildly varied colours
    ImageFolder(root, resolution)           any folder of jpg/jpeg/png/webp/bmp images
    download_anime_faces(root)              the Kaggle anime faces (about 63.6 k images),
                                            returns a folder for ImageFolder
    sample_photo(resolution=None)           a real photo (matplotlib's grace_hopper.jpg)
    make_dataset(spec, resolution)          "toy" | "anime" | a folder path -> a dataset

Ranges (see histolib.images): the datasets return what the networks see, float32
``[3, R, R]`` in **[-1, 1]**; ``sample_photo`` returns **[0, 1]**, what the colour
histogram takes. ``histolib.images.to_unit`` / ``to_signed`` convert.

Only numpy, torch and PIL are used here (no matplotlib, no jupyter); the kaggle package is
imported only inside ``download_anime_faces`` and only after the credentials were found.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import sys
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

__all__ = [
    "ToyFaces", "ImageFolder", "download_anime_faces", "anime_faces_ready", "sample_photo",
    "make_dataset", "kaggle_credentials_found", "KaggleCredentialsError", "IMAGE_EXTENSIONS",
    "ANIME_FACES_DATASET", "load_image",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
ANIME_FACES_DATASET = "splcher/animefacedataset"


# ----------------------------------------------------------------------------------------
# argument checks (one place, so every message names the argument and the fix)

def _check_int(value, name: str, lo: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if lo is not None and value < lo:
        raise ValueError(f"{name}: must be >= {lo}, got {value}")
    return value


def _check_resolution(resolution, lo: int, hi: int, name: str = "resolution") -> int:
    r = _check_int(resolution, name)
    if r < lo or r > hi or r & (r - 1):
        raise ValueError(f"{name}: must be a power of two from {lo} to {hi} "
                         f"(e.g. 64), got {r}")
    return r


# ----------------------------------------------------------------------------------------
# ToyFaces
#
# Each face is drawn from ~60 uniform numbers u in [0, 1), drawn by a numpy Generator seeded
# with (seed, index): the same (seed, index) always gives the same face, in any order, in
# any process. The numbers map to shapes (moderate variation: it stays "a face") and to
# colours (wide variation, sampled in HSV, so colour histograms differ a lot).
#
# Drawing: every part is a signed distance function d(x, y) on a pixel-centre grid in
# [-1, 1]^2 (negative inside). Its coverage clip(0.5 - d / pixel, 0, 1) is an anti-aliased
# edge one pixel wide; parts are alpha-composited back to front. A batch of faces is drawn
# at once with numpy broadcasting (parameters [N, 1, 1] against the grid [H, W]), which is
# what makes it fast; one face is the same code with N = 1.

_GRIDS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _grid(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x right, y down) in [-1, 1], each [1, R, R] float32 (cached)."""
    if resolution not in _GRIDS:
        c = ((np.arange(resolution, dtype=np.float32) + 0.5) / resolution * 2 - 1)
        y, x = np.meshgrid(c, c, indexing="ij")
        _GRIDS[resolution] = (x[None].copy(), y[None].copy())
    return _GRIDS[resolution]


def _hsv_to_rgb(h, s, v) -> np.ndarray:
    """HSV in [0, 1] (arrays [N]) -> RGB [N, 3] in [0, 1]."""
    h = (h % 1.0) * 6.0
    k = np.stack([(5 + h) % 6, (3 + h) % 6, (1 + h) % 6], -1)
    return v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4 - k), 0, 1)


def _lerp(u, lo, hi):
    return lo + (hi - lo) * u


class _Uniforms:
    """Hands out the columns of U [N, K] one at a time, so adding a parameter is one line."""

    def __init__(self, U: np.ndarray):
        self.U, self.k = U, 0

    def __call__(self, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
        u = self.U[:, self.k]
        self.k += 1
        return _lerp(u, lo, hi)


# the pose ranges (also used to find the windows of the fast path, below)
_POSE = dict(angle=0.18, ox=(-0.06, 0.06), oy=(-0.04, 0.06), scale=(0.88, 1.08))
_N_UNIFORMS = 96  # columns drawn per face (more than used, so parameters can be added)
_N_SHAPE_UNIFORMS = 27  # the first columns set pose and shape, the rest colours (checked in _face_params)


def _face_params(U: np.ndarray) -> dict[str, np.ndarray]:
    """Map uniforms U [N, K] to the face parameters (arrays [N]; colours [N, 3] in [0, 1])."""
    u = _Uniforms(U)
    n = len(U)
    p: dict[str, np.ndarray] = {}

    def colour(h, s, v):
        return _hsv_to_rgb(np.asarray(h, np.float64) * np.ones(n), np.asarray(s) * np.ones(n),
                           np.asarray(v) * np.ones(n))

    # --- pose and shape (moderate: it stays a face) ---
    p["angle"] = u(-_POSE["angle"], _POSE["angle"])       # head tilt, radians
    p["ox"], p["oy"] = u(*_POSE["ox"]), u(*_POSE["oy"])   # head position
    p["scale"] = u(*_POSE["scale"])
    p["face_rx"], p["face_ry"] = u(0.40, 0.50), u(0.40, 0.50)
    p["eye_x"], p["eye_y"] = u(0.15, 0.23), u(0.0, 0.10)
    p["eye_r"] = u(0.065, 0.10)
    p["eye_tall"] = u(1.0, 1.45)
    p["happy_eyes"] = u() < 0.18
    p["mouth_y"], p["mouth_w"] = u(0.20, 0.28), u(0.06, 0.13)
    p["open_mouth"] = u() < 0.4
    p["hair_long"] = u() < 0.55
    p["hair_len"] = u(0.35, 0.85)
    p["bangs_y"] = u(-0.25, -0.05)
    p["bangs_k"] = u(5.0, 11.0)            # strands per unit
    p["bangs_phase"] = u(0, 2 * math.pi)
    p["bangs_a"] = u(0.06, 0.16)           # strand depth
    ears = u()
    p["cat_ears"], p["bear_ears"] = ears < 0.2, (ears >= 0.2) & (ears < 0.35)
    acc = u()
    p["glasses"], p["bow"] = acc < 0.2, (acc >= 0.2) & (acc < 0.45)
    p["bow_side"] = np.where(u() < 0.5, -1.0, 1.0)
    p["brows"] = u() < 0.7
    p["brow_angle"] = u(-0.35, 0.35)
    p["pattern"] = u() < 0.4               # polka dots in the background
    p["dot_period"] = u(0.25, 0.5)

    # --- colours (wide: every hue, light and dark) ---
    assert u.k == _N_SHAPE_UNIFORMS, "update _N_SHAPE_UNIFORMS: shape and colour columns must not mix"
    natural_skin = u() < 0.55
    skin_h = np.where(natural_skin, u(0.02, 0.11), u())
    skin_s = np.where(natural_skin, u(0.25, 0.65), u(0.15, 0.6))
    skin_v = np.where(natural_skin, u(0.35, 1.0), u(0.6, 1.0))
    p["skin"] = colour(skin_h, skin_s, skin_v)
    p["hair"] = colour(u(), u(0.0, 1.0) ** 0.7, u(0.12, 1.0))
    bg_h = u()
    p["bg1"] = colour(bg_h, u(0.1, 1.0), u(0.25, 1.0))
    p["bg2"] = colour(bg_h + u(-0.25, 0.25), u(0.1, 1.0), u(0.25, 1.0))
    p["bg_dots"] = colour(u(), u(0.1, 0.9), u(0.3, 1.0))
    p["shirt"] = colour(u(), u(0.0, 1.0), u(0.15, 1.0))
    p["iris"] = colour(u(), u(0.4, 1.0), u(0.35, 1.0))
    p["mouth"] = colour(u(-0.06, 0.04), u(0.5, 0.9), u(0.35, 0.75))
    p["tongue"] = colour(u(-0.04, 0.04), u(0.3, 0.6), u(0.85, 1.0))
    p["blush"] = colour(u(-0.05, 0.03), u(0.35, 0.75), u(0.85, 1.0))
    p["blush_a"] = u(0.0, 0.6)
    p["accessory"] = colour(u(), u(0.5, 1.0), u(0.5, 1.0))
    p["ink"] = colour(u(), u(0.3, 0.8), u(0.05, 0.22))  # eyes and lines
    return p


_OPTIONAL_PARTS = ("pattern", "hair_long", "cat_ears", "bear_ears", "happy_eyes", "open_mouth",
                   "brows", "glasses", "bow")


def _style_keys(U: np.ndarray) -> np.ndarray:
    """One int per face [N]: which optional parts it has (bit k: _OPTIONAL_PARTS[k])."""
    p = _face_params(U)
    return sum(p[name].astype(np.int64) << k for k, name in enumerate(_OPTIONAL_PARTS))


def _triangle(x, y, vertices):
    """Signed distance (exact inside, a lower bound outside) to a triangle of 3 (x, y) points."""
    cx = sum(v[0] for v in vertices) / 3
    cy = sum(v[1] for v in vertices) / 3
    d = None
    for (ax, ay), (bx, by) in zip(vertices, vertices[1:] + vertices[:1]):
        nx, ny = by - ay, ax - bx                  # a normal of the edge a -> b
        norm = math.hypot(nx, ny)
        if nx * (cx - ax) + ny * (cy - ay) > 0:    # point it away from the inside
            nx, ny = -nx, -ny
        nx, ny = nx / norm, ny / norm
        e = x * nx + y * ny - (ax * nx + ay * ny)  # signed distance to the edge's line
        d = e if d is None else np.maximum(d, e, out=d)
    return d


def _cov(d: np.ndarray, px: float) -> np.ndarray:
    """Coverage of the inside of a signed distance d (anti-aliased edge one pixel wide)."""
    return np.clip(0.5 - d / px, 0.0, 1.0)


def _ellipse(x, y, rx, ry):
    """Approximate signed distance to an axis-aligned ellipse (exact on circles)."""
    r = min(rx, ry) if np.ndim(rx) == np.ndim(ry) == 0 else np.minimum(rx, ry)
    return (np.sqrt((x / rx) ** 2 + (y / ry) ** 2) - 1.0) * r


# Every part of a group lies, for every parameter value, inside a box of the face frame;
# the fast path draws a group only on the pixels that box can reach (its "window"), and
# skips a part that no face of the batch has. The reference path draws everything on
# every pixel; tests/test_data.py checks that both give the same pixels.
_BOXES = {  # (x0, x1, y0, y1) in the face frame, y down
    "features": (-0.46, 0.46, -0.32, 0.46),   # eyes, brows, cheeks, mouth, glasses
    "top": (-0.62, 0.62, -0.80, 0.08),        # animal ears, bow, hair in front
}
_WINDOWS: dict[tuple[str, int], tuple[slice, slice]] = {}


def _window(group: str, resolution: int) -> tuple[slice, slice]:
    """(rows, cols) of the pixels that the face-frame box of ``group`` can cover (cached)."""
    key = (group, resolution)
    if key not in _WINDOWS:
        x0, x1, y0, y1 = _BOXES[group]
        bx = np.array([x0, x1, x0, x1])[:, None]
        by = np.array([y0, y0, y1, y1])[:, None]
        a = np.linspace(-_POSE["angle"], _POSE["angle"], 33)[None]
        gx, gy = [], []
        for s in _POSE["scale"]:
            for ox in _POSE["ox"]:
                for oy in _POSE["oy"]:  # image point = offset + scale * rotate(face point)
                    gx.append(ox + s * (np.cos(a) * bx - np.sin(a) * by))
                    gy.append(oy + s * (np.sin(a) * bx + np.cos(a) * by))
        gx, gy = np.concatenate(gx), np.concatenate(gy)
        margin = 0.02 + 2 * 2.0 / resolution      # thicker lines at low resolution, anti-aliasing

        def span(lo, hi):
            i0 = int(np.floor((lo - margin + 1) / 2 * resolution))
            i1 = int(np.ceil((hi + margin + 1) / 2 * resolution))
            return slice(max(i0, 0), min(i1, resolution))

        _WINDOWS[key] = (span(gy.min(), gy.max()), span(gx.min(), gx.max()))
    return _WINDOWS[key]


class _Canvas:
    """A batch of images [N, 3, H, W] in [0, 1] (or a window of one) with back-to-front
    compositing. ``fast``: skip a part that no face in the batch has."""

    def __init__(self, img: np.ndarray, fast: bool):
        self.img, self.fast = img, fast
        self.tmp = np.empty_like(img)

    def has(self, present) -> bool:
        return present is None or not self.fast or bool(present.any())

    def paint(self, alpha: np.ndarray, colour: np.ndarray, present=None):
        """img <- img + alpha * (colour - img); alpha [N, h, w], colour [N, 3], present [N] bool."""
        if present is not None and not (self.fast and present.all()):
            alpha = alpha * present.astype(np.float32)[:, None, None]
        np.subtract(colour.astype(np.float32)[:, :, None, None], self.img, out=self.tmp)
        self.tmp *= alpha[:, None]
        self.img += self.tmp

    def outlined(self, d, colour, px, line, present=None):
        """Fill the inside of d with ``colour`` and a darker outline of width ``line``."""
        self.paint(_cov(d - line, px), colour * 0.45, present)
        self.paint(_cov(d, px), colour, present)


def _render_faces(U: np.ndarray, resolution: int, fast: bool = True) -> np.ndarray:
    """Draw N faces from their uniforms U [N, K]. Returns [N, 3, R, R] float32 in [0, 1].

    fast=False is the reference: every part on every pixel. fast=True draws the small parts
    only inside their windows and skips parts no face has; the pixels are the same.
    """
    p = _face_params(U)
    n = len(U)
    gx, gy = _grid(resolution)
    px = 2.0 / resolution                      # one pixel in grid units
    line = max(0.035, 1.2 * px)                # outline width: at least about a pixel
    full = (slice(None), slice(None))

    def col(name):  # [N] -> [N, 1, 1] for broadcasting against the grid
        return p[name].astype(np.float32)[:, None, None]

    def has(name):
        return canvas.has(p[name])

    # background: vertical gradient between two colours, polka dots on some
    t = (gy + 1) * 0.5                          # [1, H, W] in [0, 1]
    bg1 = p["bg1"].astype(np.float32)[:, :, None, None]
    bg2 = p["bg2"].astype(np.float32)[:, :, None, None]
    canvas = _Canvas(bg1 + (bg2 - bg1) * t[:, None], fast)
    if has("pattern"):
        per = col("dot_period")                 # dots of radius 0.2 per on a square lattice
        u, v = (gx + 1) / per, (gy + 1) / per   # lattice units; position in the cell:
        u -= np.floor(u) + 0.5                  # (x mod per) / per - 1/2, cheaper than np.mod
        v -= np.floor(v) + 0.5
        canvas.paint(_cov((np.sqrt(u * u + v * v) - 0.2) * per, px), p["bg_dots"], p["pattern"])

    # the face frame: shift, scale, tilt (everything below except the background)
    ca, sa, s = np.cos(col("angle")), np.sin(col("angle")), col("scale")
    spx = px / s                                # a pixel in the face frame

    frames = {}

    def frame(group):
        """Face-frame coordinates x, y, |x| and the canvas, on the window of ``group``."""
        if group in frames:
            return frames[group]
        rows, cols = _window(group, resolution) if fast and group else full
        x0 = (gx[:, rows, cols] - col("ox")) / s
        y0 = (gy[:, rows, cols] - col("oy")) / s
        x = ca * x0 + sa * y0
        y = -sa * x0 + ca * y0
        sub = _Canvas(canvas.img[:, :, rows, cols], fast) if fast and group else canvas
        frames[group] = x, y, np.abs(x), sub     # |x| mirrors: one evaluation, both sides
        return frames[group]

    # long hair behind the head (its lower end hides behind the shoulders), shoulders
    x, y, ax, cv = frame(None)
    frx, fry = col("face_rx"), col("face_ry")
    if has("hair_long"):
        hl = col("hair_len")
        hair_back = _ellipse(x, y - (hl * 0.5 - 0.05), frx + 0.15, fry * 0.6 + hl * 0.5 + 0.12)
        cv.outlined(hair_back, p["hair"], spx, line, p["hair_long"])
    cv.outlined(_ellipse(x, y - 0.98, 0.62, 0.42), p["shirt"], spx, line)

    # animal ears on some: cat (triangles with an inner triangle) or bear (circles)
    x, y, ax, cv = frame("top")
    frx, fry = col("face_rx"), col("face_ry")
    if has("cat_ears"):
        ex, ey = ax - frx * 0.62, y + fry * 0.55       # ear base centre, mirrored
        cat = _triangle(ex, ey, ((-0.17, 0.0), (0.17, 0.0), (0.04, -0.42)))
        cv.outlined(cat, p["hair"], spx, line, p["cat_ears"])
        inner = _triangle(ex, ey, ((-0.09, -0.04), (0.10, -0.04), (0.035, -0.30)))
        cv.paint(_cov(inner, spx), p["blush"], p["cat_ears"])
    if has("bear_ears"):
        r = np.sqrt((ax - frx * 0.72) ** 2 + (y + fry * 0.78) ** 2)
        cv.outlined(r - 0.14, p["hair"], spx, line, p["bear_ears"])
        cv.paint(_cov(r - 0.07, spx), p["blush"], p["bear_ears"])

    # the face
    x, y, ax, cv = frame(None)
    frx, fry = col("face_rx"), col("face_ry")
    cv.outlined(_ellipse(x, y, frx, fry), p["skin"], spx, line)

    # the small parts: cheeks, eyes, mouth
    x, y, ax, cv = frame("features")
    ex, ey, er, tall = col("eye_x"), col("eye_y"), col("eye_r"), col("eye_tall")
    cheek = _ellipse(ax - ex - 0.05, y - ey - 0.14, 0.09, 0.05)
    cv.paint(np.clip(0.5 - cheek / 0.06, 0, 1) * col("blush_a"), p["blush"])   # soft edge

    # eyes: a dark oval, a coloured iris in its lower half, a highlight; or happy arcs ^ ^
    exx, eyy = ax - ex, y - ey
    open_eyes = ~p["happy_eyes"]
    if canvas.has(open_eyes):
        cv.paint(_cov(_ellipse(exx, eyy, er, er * tall), spx), p["ink"], open_eyes)
        cv.paint(_cov(_ellipse(exx, eyy - er * 0.3, er * 0.72, er * tall * 0.62), spx), p["iris"], open_eyes)
        cv.paint(_cov(np.sqrt(exx * exx + (eyy - er * 0.25) ** 2) - er * 0.32, spx), p["ink"], open_eyes)
        hi = np.sqrt((exx + er * 0.35) ** 2 + (eyy + er * 0.45 * tall) ** 2) - er * 0.33
        cv.paint(_cov(hi, spx), np.ones((n, 3)), open_eyes)
    if has("happy_eyes"):
        ring = np.abs(np.sqrt(exx * exx + (eyy - er * 0.5) ** 2) - er) - max(0.022, 0.6 * px)
        cv.paint(_cov(np.maximum(ring, eyy - er * 0.5), spx), p["ink"], p["happy_eyes"])  # upper half

    # mouth: a smile (lower half of a ring) or an open mouth with a tongue
    my, mw = y - col("mouth_y"), col("mouth_w")
    closed = ~p["open_mouth"]
    if canvas.has(closed):
        smile = np.maximum(np.abs(np.sqrt(x * x + my * my) - mw) - max(0.018, 0.55 * px), -my)
        cv.paint(_cov(smile, spx), p["ink"], closed)
    if has("open_mouth"):
        open_m = np.maximum(np.sqrt(x * x + (my + 0.01) ** 2) - mw, -(my + 0.01))
        cv.outlined(open_m, p["mouth"], spx, line * 0.7, p["open_mouth"])
        tongue = np.maximum(_ellipse(x, my - mw * 0.75, mw * 0.6, mw * 0.4), open_m)
        cv.paint(_cov(tongue, spx), p["tongue"], p["open_mouth"])

    # hair in front: a cap a little larger than the face, cut by a line of pointy strands
    # that stays above the eyes
    x, y, ax, cv = frame("top")
    frx, fry = col("face_rx"), col("face_ry")
    ex, ey, er, tall = col("eye_x"), col("eye_y"), col("eye_r"), col("eye_tall")
    cap = _ellipse(x, y + 0.02, frx + 0.06, fry + 0.06)
    strands = col("bangs_y") + col("bangs_a") * np.abs(np.sin(col("bangs_k") * x + col("bangs_phase")))
    strands = np.minimum(strands, ey - er * tall - 0.03)
    cv.outlined(np.maximum(cap, (y - strands) * 0.7), p["hair"], spx, line)

    # a bow on some, on one side of the head
    if has("bow"):
        bxx = x - col("bow_side") * frx * 0.55
        byy = y + fry * 0.95
        wing = np.maximum(np.abs(byy) - np.abs(bxx) * 0.8 - 0.02, np.abs(bxx) - 0.17)
        cv.outlined(wing, p["accessory"], spx, line * 0.8, p["bow"])
        cv.outlined(np.sqrt(bxx * bxx + byy * byy) - 0.045, p["accessory"], spx, line * 0.8, p["bow"])

    # eyebrows (short tilted ellipses, over the hair) and round glasses on some
    x, y, ax, cv = frame("features")
    exx, eyy = ax - ex, y - ey
    if has("brows"):
        bx, by = exx, eyy + er * tall + 0.07
        cb, sb = np.cos(col("brow_angle")), np.sin(col("brow_angle"))
        brow = _ellipse(cb * bx + sb * by, -sb * bx + cb * by, 0.075, 0.022)
        cv.paint(_cov(brow, spx), p["hair"] * 0.55, p["brows"])
    if has("glasses"):
        lens = np.abs(np.sqrt(exx * exx + eyy * eyy) - er * 1.9) - max(0.018, 0.55 * px)
        bridge = np.maximum(np.abs(eyy + 0.02) - 0.012, ax - ex + er * 1.9)
        cv.paint(_cov(np.minimum(lens, bridge), spx), p["accessory"] * 0.5, p["glasses"])
    return canvas.img


class ToyFaces(torch.utils.data.Dataset):
    """Procedurally drawn cartoon faces: the built-in dataset (no download).

    Background (gradient, sometimes dots), shoulders, hair (long or short, strands in
    front), animal ears on some, the face, blushing cheeks, eyes (open or happy arcs),
    eyebrows, a mouth (smile or open), glasses or a bow on some. Every colour is sampled
    in HSV over wide ranges (any hue, light to dark), so the colour histograms differ a
    lot between faces, while pose and shape vary only moderately.

    size:       number of faces (>= 1).
    resolution: a power of two from 16 to 256 (default 64).
    seed:       int >= 0; face ``i`` depends only on (seed, i), so it is the same in any
                order, batch or worker process.

    ``ds[i]`` -> float32 ``[3, R, R]`` in [-1, 1]. ``ds.batch(indices)`` -> ``[B, 3, R, R]``
    draws many at once (fast path, the same pixels); a ``DataLoader`` uses it through
    ``__getitems__``. Over 1,000 faces/s at 64 px on one core (benchmarks/bench_toyfaces.py).
    """

    def __init__(self, size: int = 10_000, resolution: int = 64, seed: int = 0):
        self.size = _check_int(size, "size", lo=1)
        self.resolution = _check_resolution(resolution, 16, 256)
        self.seed = _check_int(seed, "seed", lo=0)

    def __len__(self) -> int:
        return self.size

    def _index(self, i) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            if isinstance(i, torch.Tensor) and i.ndim == 0 and not i.is_floating_point():
                i = int(i)
            else:
                raise TypeError(f"ToyFaces index: expected an int, got {type(i).__name__}")
        i = int(i)
        if i < 0:
            i += self.size
        if not 0 <= i < self.size:
            raise IndexError(f"ToyFaces index {i} out of range for size {self.size}")
        return i

    def uniforms(self, indices: Sequence[int]) -> np.ndarray:
        """The random numbers behind faces ``indices``: [B, K] in [0, 1), one Generator each."""
        return np.stack([np.random.default_rng((self.seed, self._index(i))).random(_N_UNIFORMS)
                         for i in indices])

    def batch(self, indices: Sequence[int], chunk: int = 8) -> torch.Tensor:
        """Faces ``indices`` drawn together: float32 [B, 3, R, R] in [-1, 1]."""
        indices = list(indices)
        if not indices:
            raise ValueError("indices: expected at least one index")
        U = self.uniforms(indices)
        R = self.resolution
        out = np.empty((len(indices), 3, R, R), np.float32)
        step = max(1, chunk * 64 * 64 // (R * R))      # ~chunk faces of 64 px: stays in cache
        # draw faces with the same optional parts together, so a chunk skips the parts
        # none of its faces has (each face's pixels do not depend on its chunk)
        order = np.argsort(_style_keys(U), kind="stable")
        for a in range(0, len(U), step):
            out[order[a:a + step]] = _render_faces(U[order[a:a + step]], R)
        out *= 2.0
        out -= 1.0
        return torch.from_numpy(out)

    def __getitem__(self, i) -> torch.Tensor:
        return self.batch([i])[0]

    def recoloured(self, indices: Sequence[int], colours: "ToyFaces", colour_indices: Sequence[int]) -> torch.Tensor:
        """Faces ``indices`` of this set (pose, shape, parts) painted with the colours of faces
        ``colour_indices`` of ``colours``: [B, 3, R, R] in [-1, 1].

        What a perfect colour-only recolouring would make; ``histolib.evaluate`` uses it for the
        best control ratio a generator whose layout ignores the histogram could reach.
        """
        indices, colour_indices = list(indices), list(colour_indices)
        if len(indices) != len(colour_indices) or not indices:
            raise ValueError(f"indices, colour_indices: expected the same non-zero length, got "
                             f"{len(indices)} and {len(colour_indices)}")
        U = self.uniforms(indices)
        U[:, _N_SHAPE_UNIFORMS:] = colours.uniforms(colour_indices)[:, _N_SHAPE_UNIFORMS:]
        return torch.from_numpy(_render_faces(U, self.resolution)) * 2.0 - 1.0

    def __getitems__(self, indices: Sequence[int]) -> list[torch.Tensor]:
        """What ``DataLoader`` calls for a whole batch (torch >= 2.0): one batched draw."""
        return list(self.batch(indices).unbind(0))

    def __repr__(self) -> str:
        return f"ToyFaces(size={self.size}, resolution={self.resolution}, seed={self.seed})"


# ----------------------------------------------------------------------------------------
# Image files -> RGB tensors

def _to_rgb(img):
    """Any PIL image -> mode "RGB" (8 bit per channel).

    Grayscale ("1", "L"), palette ("P"), CMYK, YCbCr, ... convert as PIL does. Anything with
    transparency ("RGBA", "LA", "PA", "P" with a transparent colour) is composited on a
    WHITE background, as an image viewer on a white page shows it. 16- and 32-bit
    grayscale ("I;16*", "I") is scaled to 8 bit from its full range (0..65535), and
    float grayscale ("F") is taken as 0..1 if its maximum is <= 1, else as 0..255.
    """
    from PIL import Image

    mode = img.mode
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        a = np.asarray(img, dtype=np.float64)
        if mode == "F":
            scale = 1.0 if a.size and a.max() <= 1.0 else 255.0
        else:  # "I;16", "I;16B", "I;16L", "I;16N", "I"
            scale = 65535.0
        a = np.clip(a / scale * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(a, "L").convert("RGB")
    return img if mode == "RGB" else img.convert("RGB")


def _load_square(path, resolution: int | None):
    """Open an image file, convert to RGB, centre-crop to a square, resize (antialiased).

    Returns a PIL RGB image of resolution x resolution (or the uncropped image if None).
    """
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        if resolution is not None and img.format == "JPEG":
            img.draft(img.mode, (resolution, resolution))   # decode at a reduced scale
        img = ImageOps.exif_transpose(img)                   # camera rotation
        img = _to_rgb(img)
        if resolution is None:
            return img
        w, h = img.size
        side = min(w, h)
        box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
        return img.crop(box).resize((resolution, resolution), Image.Resampling.BICUBIC)


def _pil_to_tensor(img) -> torch.Tensor:
    """PIL RGB -> float32 [3, H, W] in [0, 1]."""
    a = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(a.copy()).permute(2, 0, 1).float().div_(255.0)


def load_image(path, resolution: int | None = None) -> torch.Tensor:
    """One picture file as float32 [3, H, W] in [0, 1] (the histogram's range).

    Any mode PIL reads is converted to RGB as ImageFolder does; with ``resolution`` it is
    centre-cropped to a square and resized to resolution x resolution.
    """
    return _pil_to_tensor(_load_square(path, resolution))


class ImageFolder(torch.utils.data.Dataset):
    """Every jpg/jpeg/png/webp/bmp image under ``root`` (searched recursively), as squares.

    root:       a folder (str or Path). Hidden files and folders (names starting with
                ".", e.g. macOS "._x.jpg") are ignored. Extensions are case-insensitive.
    resolution: side of the output, a power of two from 4 to 1024.
    validate:   if True, open and decode every file now and drop the ones that fail, with
                ONE warning that counts them (slow for big folders: reads every file).

    ``ds[i]`` -> float32 ``[3, R, R]`` in [-1, 1]: the file is read only now (lazy), centre-
    cropped to a square and resized with an antialiasing (bicubic) filter; grayscale,
    palette, RGBA/LA (composited on white), CMYK and 16-bit images become RGB.

    A file that cannot be decoded never stops an epoch: ``ds[i]`` then returns the next
    decodable file, records the bad path in ``ds.bad_files`` and warns once per dataset
    object and process (each DataLoader worker keeps its own list). Missing or empty folder:
    ``FileNotFoundError`` naming the folder and the accepted extensions.
    """

    def __init__(self, root, resolution: int = 64, validate: bool = False):
        if not isinstance(root, (str, os.PathLike)):
            raise ValueError(f"root: expected a folder path (str or Path), got {type(root).__name__}")
        self.root = Path(root).expanduser()
        self.resolution = _check_resolution(resolution, 4, 1024)
        self.paths = find_images(self.root)
        self.bad_files: dict[str, str] = {}      # path -> why it could not be decoded
        self._warned = False
        if validate:
            self.validate()

    def __len__(self) -> int:
        return len(self.paths)

    def validate(self) -> list[str]:
        """Decode every file; drop those that fail (one warning with the count). Returns them."""
        good, bad = [], []
        for path in self.paths:
            try:
                _load_square(path, self.resolution)
                good.append(path)
            except Exception as exc:  # noqa: BLE001 - any decoder error means "skip this file"
                self.bad_files[str(path)] = f"{type(exc).__name__}: {exc}"
                bad.append(str(path))
        if bad:
            warnings.warn(f"ImageFolder('{self.root}'): skipped {len(bad)} of {len(self.paths)} "
                          f"files that could not be decoded (first: {bad[0]}); see .bad_files",
                          RuntimeWarning, stacklevel=2)
            self._warned = True
        if not good:
            raise FileNotFoundError(f"ImageFolder: none of the {len(self.paths)} image files under "
                                    f"'{self.root}' could be decoded")
        self.paths = good
        return bad

    def load(self, i: int) -> torch.Tensor:
        """File ``i`` as float32 [3, R, R] in [0, 1]; raises if it cannot be decoded."""
        return _pil_to_tensor(_load_square(self.paths[i], self.resolution))

    def __getitem__(self, i) -> torch.Tensor:
        n = len(self.paths)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"ImageFolder index {i} out of range for {n} images")
        for k in range(n):                         # this file, else the next decodable one
            j = (i + k) % n
            path = str(self.paths[j])
            if path in self.bad_files:
                continue
            try:
                return self.load(j).mul_(2).sub_(1)
            except Exception as exc:  # noqa: BLE001 - any decoder error means "skip this file"
                self.bad_files[path] = f"{type(exc).__name__}: {exc}"
                if not self._warned:
                    self._warned = True
                    warnings.warn(f"ImageFolder('{self.root}'): {path} could not be decoded "
                                  f"({type(exc).__name__}); it and any later such files are skipped "
                                  f"and counted in .bad_files (ImageFolder(..., validate=True) "
                                  f"checks every file up front)", RuntimeWarning, stacklevel=2)
        raise RuntimeError(f"ImageFolder('{self.root}'): none of the {n} image files could be decoded")

    def __repr__(self) -> str:
        return f"ImageFolder('{self.root}', resolution={self.resolution}, {len(self)} images)"


def find_images(root) -> list[Path]:
    """All image files (IMAGE_EXTENSIONS, any case) under ``root``, recursively, sorted.

    Hidden files and folders are skipped. Raises FileNotFoundError (naming the folder and
    the extensions) when the folder is missing or holds none.
    """
    root = Path(root).expanduser()
    exts = ", ".join(IMAGE_EXTENSIONS)
    if not root.exists():
        raise FileNotFoundError(f"image folder '{root}' does not exist (expected a folder with "
                                f"{exts} images, searched recursively)")
    if not root.is_dir():
        raise FileNotFoundError(f"image folder '{root}' is a file, not a folder (expected a "
                                f"folder with {exts} images)")
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append(Path(dirpath) / name)
    if not found:
        raise FileNotFoundError(f"no images in '{root}': expected files ending in {exts} "
                                f"(any case), searched recursively")
    return sorted(found)


def sample_photo(resolution: int | None = None) -> torch.Tensor:
    """A real photo for the notebooks: matplotlib's public-domain ``grace_hopper.jpg``.

    Found through the installed matplotlib package, without importing it.
    resolution: None for the full photo (about 512 x 600), else an int from 8 to 1024: the
    photo centre-cropped to a square and resized (antialiased).
    Returns float32 [3, H, W] in **[0, 1]** (the histogram's range; ``to_signed`` for [-1, 1]).
    """
    if resolution is not None:
        resolution = _check_int(resolution, "resolution", lo=8)
        if resolution > 1024:
            raise ValueError(f"resolution: must be from 8 to 1024 or None, got {resolution}")
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("sample_photo needs matplotlib's sample data: pip install matplotlib")
    path = Path(spec.submodule_search_locations[0]) / "mpl-data" / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        raise FileNotFoundError(f"sample_photo: '{path}' is missing; reinstall matplotlib "
                                f"(pip install --force-reinstall matplotlib)")
    return _pil_to_tensor(_load_square(path, resolution))


# ----------------------------------------------------------------------------------------
# The Kaggle anime faces

class KaggleCredentialsError(RuntimeError):
    """No (or rejected) Kaggle credentials. The message is one line saying what to set up."""

    def _render_traceback_(self):  # IPython/Jupyter: show the one line, not a traceback
        return [f"{type(self).__name__}: {self}"]


_CREDENTIALS_HELP = ("create an API token at https://www.kaggle.com/settings/api and save it as "
                     "~/.kaggle/kaggle.json (chmod 600), or set the environment variables "
                     "KAGGLE_USERNAME and KAGGLE_KEY (or KAGGLE_API_TOKEN)")


def default_data_root() -> Path:
    """Where downloads go by default: ``$HISTOLIB_DATA``, else ``~/.cache/histolib``."""
    return Path(os.environ.get("HISTOLIB_DATA") or "~/.cache/histolib").expanduser()


def kaggle_credentials_found() -> str | None:
    """Where Kaggle credentials are (a file path or the variable names, never the key), or None.

    Checked without importing the kaggle package (its import already tries to log in):
    KAGGLE_USERNAME + KAGGLE_KEY, KAGGLE_API_TOKEN, kaggle.json in $KAGGLE_CONFIG_DIR,
    ~/.kaggle or ~/.config/kaggle, and ~/.kaggle/access_token or credentials.json.
    """
    env = os.environ
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return "environment variables KAGGLE_USERNAME and KAGGLE_KEY"
    if env.get("KAGGLE_API_TOKEN"):
        return "environment variable KAGGLE_API_TOKEN"
    home = Path(os.path.expanduser("~"))
    dirs = [Path(env["KAGGLE_CONFIG_DIR"])] if env.get("KAGGLE_CONFIG_DIR") else []
    dirs += [home / ".kaggle", Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"]
    files = [d / "kaggle.json" for d in dirs]
    files += [home / ".kaggle" / n for n in ("access_token", "access_token.txt", "credentials.json")]
    for f in files:
        if f.is_file():
            return str(f)
    return None


def _kaggle_fetch(dataset: str, dest: Path, force: bool = False) -> Path:
    """The one network call: download the Kaggle dataset's zip into ``dest``; returns its path.

    The kaggle package resumes a partial download by itself (``force`` starts over).
    Raises KaggleCredentialsError, before importing kaggle, when no credentials exist.
    """
    where = kaggle_credentials_found()
    if where is None:
        raise KaggleCredentialsError(f"no Kaggle credentials found: {_CREDENTIALS_HELP}")
    if importlib.util.find_spec("kaggle") is None:        # looks without importing
        raise RuntimeError("the kaggle package is missing: pip install kaggle")
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi
        api = KaggleApi()
        api.authenticate()
    except (SystemExit, Exception) as exc:  # kaggle calls exit(1) on bad credentials
        raise KaggleCredentialsError(f"Kaggle did not accept the credentials from {where} "
                                     f"({type(exc).__name__}); {_CREDENTIALS_HELP}") from None
    api.dataset_download_files(dataset, path=str(dest), force=force, quiet=False, unzip=False)
    return Path(dest) / f"{dataset.split('/')[-1]}.zip"


_ANIME_DIR = "anime_faces"
_MARKER = "COMPLETE.json"


def anime_faces_ready(root=None) -> Path | None:
    """The images folder of a complete earlier download under ``root``, else None.

    Complete means: the marker written after a successful extraction exists and the folder
    holds as many images as it records.
    """
    target = Path(root).expanduser() if root is not None else default_data_root()
    target = target / _ANIME_DIR
    try:
        marker = json.loads((target / _MARKER).read_text())
        images = target / marker["folder"]
        n = sum(1 for e in os.scandir(images)
                if os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return images if n == marker.get("images") and n > 0 else None


def _extract(zip_path: Path, root: Path) -> Path:
    """Extract the zip into a temporary folder, check it, mark it complete, rename it into place."""
    target = root / _ANIME_DIR
    tmp = Path(tempfile.mkdtemp(prefix=f".{_ANIME_DIR}.partial-", dir=root))
    try:
        with zipfile.ZipFile(zip_path) as zf:
            expected = sum(1 for n in zf.namelist()
                           if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS)
            zf.extractall(tmp)                      # raises BadZipFile on a corrupt member
        folder = "images" if (tmp / "images").is_dir() else "."
        n = sum(1 for e in os.scandir(tmp / folder)
                if os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS)
        if n == 0 or n != expected:
            raise zipfile.BadZipFile(f"{zip_path}: expected {expected} images in "
                                     f"'{folder}/', found {n}")
        (tmp / _MARKER).write_text(json.dumps({"dataset": ANIME_FACES_DATASET, "folder": folder,
                                               "images": n, "zip": zip_path.name}))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)                     # the complete folder appears at once
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target / folder


def download_anime_faces(root=None, *, force: bool = False, keep_zip: bool = True,
                         fetch: Callable[..., Path] = _kaggle_fetch) -> Path:
    """Download and extract the Kaggle anime faces (``splcher/animefacedataset``, ~63.6 k jpgs).

    root:     where to put it (default: ``default_data_root()``, i.e. $HISTOLIB_DATA or
              ~/.cache/histolib). Layout: ``root/animefacedataset.zip`` and
              ``root/anime_faces/images/*.jpg`` plus a ``COMPLETE.json`` marker.
    force:    download and extract again even if a complete copy exists.
    keep_zip: keep the zip (about 400 MB) after extraction.
    fetch:    ``fetch(dataset, dest, force) -> zip path``, the network call (the kaggle
              package by default; tests pass a function that writes a local zip).

    Idempotent: a complete earlier download is reused without touching the network; a
    partial one is finished (an interrupted zip download is resumed by kaggle, an
    interrupted extraction is redone from the zip; a corrupt zip is downloaded again).
    Without credentials: KaggleCredentialsError, one line saying how to set them up.
    Returns the folder of images, ready for ``ImageFolder``.
    """
    root = Path(root).expanduser() if root is not None else default_data_root()
    if not force:
        ready = anime_faces_ready(root)
        if ready is not None:
            return ready
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f".{_ANIME_DIR}.partial-*"):     # an extraction that was cut off
        shutil.rmtree(stale, ignore_errors=True)
    zip_path = root / f"{ANIME_FACES_DATASET.split('/')[-1]}.zip"
    if force and zip_path.exists():
        zip_path.unlink()
    for attempt in range(3):
        if not zipfile.is_zipfile(zip_path):   # missing or cut off: (re)download
            zip_path = Path(fetch(ANIME_FACES_DATASET, root, attempt > 0))
        try:
            images = _extract(zip_path, root)
            break
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            if attempt == 2:
                raise RuntimeError(f"download_anime_faces: '{zip_path}' is still unusable after "
                                   f"downloading it again ({exc}); delete it and retry") from None
            zip_path.unlink(missing_ok=True)      # corrupt: start over
    if not keep_zip:
        zip_path.unlink(missing_ok=True)
    return images


# ----------------------------------------------------------------------------------------
# One entry point for the trainer and the notebooks

def make_dataset(spec, resolution: int = 64, *, size: int = 10_000, seed: int = 0,
                 root=None, validate: bool = False) -> torch.utils.data.Dataset:
    """"toy" | "anime" | a folder path -> a dataset of float32 [3, R, R] images in [-1, 1].

    "toy":   ToyFaces(size, resolution, seed) (size and seed are used only here).
    "anime": the Kaggle anime faces, downloaded into ``root`` on first use
             (download_anime_faces; needs Kaggle credentials).
    a path:  ImageFolder(path, resolution, validate=validate).
    """
    if isinstance(spec, str) and spec.lower() == "toy":
        return ToyFaces(size, resolution, seed)
    if isinstance(spec, str) and spec.lower() == "anime":
        _check_resolution(resolution, 4, 1024)           # before a long download
        return ImageFolder(download_anime_faces(root), resolution, validate=validate)
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec).expanduser()
        if not path.is_dir():
            raise ValueError(f"spec: expected 'toy', 'anime' or an image folder, got '{spec}' "
                             f"(no such folder)")
        return ImageFolder(path, resolution, validate=validate)
    raise ValueError(f"spec: expected 'toy', 'anime' or an image folder path, got {type(spec).__name__}")


def main(argv=None) -> int:
    """``python -m histolib.data download-anime [--root DIR]``: get the Kaggle anime faces."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m histolib.data", description=main.__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    dl = sub.add_parser("download-anime", help="download and extract the Kaggle anime faces")
    dl.add_argument("--root", default=None, help=f"folder for the data (default: {default_data_root()})")
    dl.add_argument("--force", action="store_true", help="download again even if complete")
    args = ap.parse_args(argv)
    try:
        images = download_anime_faces(args.root, force=args.force)
    except KaggleCredentialsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{sum(1 for _ in os.scandir(images))} images in {images}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
