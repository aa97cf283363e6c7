"""histolib.data: ToyFaces, ImageFolder, the anime-faces download logic, the sample photo."""
from __future__ import annotations

import io
import itertools
import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from histolib import data
from histolib.data import (ImageFolder, KaggleCredentialsError, ToyFaces, download_anime_faces,
                           make_dataset, sample_photo)

RESOLUTIONS = (16, 32, 64, 128, 256)


# ----------------------------------------------------------------------------------------
# ToyFaces

def test_toyfaces_deterministic_per_seed_and_index():
    a = ToyFaces(100, 64, seed=7)
    b = ToyFaces(100, 64, seed=7)
    # same (seed, index) -> same pixels, whatever the order or the batch it is drawn in
    assert torch.equal(a[5], b[5])
    assert torch.equal(a.batch([9, 5, 2])[1], b[5])
    assert torch.equal(a[-1], a[99])


def test_toyfaces_differ_across_seeds_and_indices():
    a, b = ToyFaces(10, 64, seed=0), ToyFaces(10, 64, seed=1)
    assert (a[0] - a[1]).abs().mean() > 0.05
    assert (a[0] - b[0]).abs().mean() > 0.05
    x = a.batch(range(10)).flatten(1)
    assert len({tuple(v) for v in x[:, ::97].tolist()}) == 10    # ten distinct faces


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_toyfaces_shape_dtype_range(resolution):
    ds = ToyFaces(6, resolution, seed=3)
    x = ds.batch(range(6))
    assert x.shape == (6, 3, resolution, resolution) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert x.min() < -0.5 and x.max() > 0.5                     # uses the range
    assert ds[0].shape == (3, resolution, resolution)


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_toyfaces_fast_path_equals_reference(resolution):
    """The fast path (windows, skipped parts) draws exactly the reference pixels."""
    U = ToyFaces(1000, resolution, seed=11).uniforms(range(max(6, 24 * 64 // resolution)))
    fast = data._render_faces(U, resolution, fast=True)
    ref = data._render_faces(U, resolution, fast=False)
    np.testing.assert_array_equal(fast, ref)


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_toyfaces_fast_path_equals_reference_at_extremes(resolution):
    """Every parameter at the ends of its range (largest eyes and glasses at the most
    tilted, shifted, scaled pose, ...): the windows of the fast path still hold every part.
    (Shrinking the windows' boxes by a third makes this test fail.)"""
    rng = np.random.default_rng(resolution)
    n = max(8, 48 * 64 * 64 // resolution ** 2)
    U = rng.choice([0.0, 1 - 1e-9, 0.5], size=(n, data._N_UNIFORMS), p=[0.45, 0.45, 0.1])
    np.testing.assert_array_equal(data._render_faces(U, resolution, fast=True),
                                  data._render_faces(U, resolution, fast=False))


def test_toyfaces_batch_equals_single_and_dataloader():
    ds = ToyFaces(20, 32, seed=2)
    singles = torch.stack([ds[i] for i in range(20)])
    torch.testing.assert_close(ds.batch(range(20)), singles)
    loader = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=False)
    torch.testing.assert_close(torch.cat(list(loader)), singles)
    # worker processes draw the same faces (each face depends only on (seed, index))
    loader = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=False, num_workers=2)
    torch.testing.assert_close(torch.cat(list(loader)), singles)


def test_toyfaces_anti_aliased():
    """Edges are anti-aliased: a face drawn at 64 px is close to the same face drawn at
    256 px and averaged over 4 x 4 blocks (what a perfect anti-aliasing gives).

    Measured: 0.005 mean absolute difference; hard edges (coverage 0 or 1) give 0.022.
    """
    hi = ToyFaces(8, 256, seed=0).batch(range(8))
    lo = ToyFaces(8, 64, seed=0).batch(range(8))
    assert (torch.nn.functional.avg_pool2d(hi, 4) - lo).abs().mean() < 0.01


def test_toyfaces_colour_diversity():
    """Colours vary a lot: per-image mean colours spread out, and histograms differ."""
    x = (ToyFaces(64, 32, seed=0).batch(range(64)) + 1) / 2        # [0, 1]
    means = x.mean(dim=(2, 3))                                       # [64, 3]
    pairwise = torch.cdist(means, means)
    mean_dist = pairwise.sum() / (64 * 63)
    assert mean_dist > 0.22, mean_dist     # measured 0.27; the same faces in gray: 0.18
    # the mean colours cover the colour wheel: all six hue sectors (which channels lie
    # above the colour's own mean: R, RG, G, GB, B, BR) occur
    sectors = {tuple((m > m.mean()).tolist()) for m in means}
    assert len(sectors) == 6
    # coarse 4x4x4 colour histograms: the average total-variation distance between two
    # faces is large (0 = same histogram, 1 = disjoint colours)
    q = (x.clamp(0, 0.999) * 4).long()
    codes = (q[:, 0] * 16 + q[:, 1] * 4 + q[:, 2]).flatten(1)
    hist = torch.stack([torch.bincount(c, minlength=64).float() / c.numel() for c in codes])
    tv = 0.5 * (hist[:, None] - hist[None]).abs().sum(-1)
    assert tv.sum() / (64 * 63) > 0.6      # measured 0.77


@pytest.mark.parametrize("kwargs, name", [
    (dict(size=0), "size"), (dict(size=-3), "size"), (dict(size=2.5), "size"),
    (dict(resolution=48), "resolution"), (dict(resolution=8), "resolution"),
    (dict(resolution=512), "resolution"), (dict(resolution="64"), "resolution"),
    (dict(resolution=True), "resolution"), (dict(seed=-1), "seed"), (dict(seed=1.0), "seed"),
])
def test_toyfaces_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        ToyFaces(**{"size": 10, **kwargs})


def test_toyfaces_index_errors():
    ds = ToyFaces(5, 16)
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(TypeError):
        ds[1.5]
    assert len(ds) == 5 and "size=5" in repr(ds)


# ----------------------------------------------------------------------------------------
# ImageFolder

def _gradient(w=40, h=30):
    """An RGB uint8 image [h, w, 3] with a known, non-constant content."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // (w - 1), yy * 255 // (h - 1), np.full_like(xx, 90)], -1).astype(np.uint8)


def _write_modes(folder: Path) -> dict[str, Path]:
    """One file per mode the loader must convert, plus nested folders and upper-case names."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sub" / "deeper").mkdir(parents=True)
    rgb = Image.fromarray(_gradient())
    files = {
        "rgb_jpg": folder / "a_rgb.jpg",
        "gray": folder / "sub" / "b_gray.PNG",
        "palette": folder / "c_palette.png",
        "palette_transparent": folder / "d_ptrans.png",
        "rgba": folder / "sub" / "deeper" / "e_rgba.png",
        "la": folder / "f_la.png",
        "cmyk": folder / "g_cmyk.JPEG",
        "i16": folder / "h_i16.png",
        "webp": folder / "j.webp",
        "bmp": folder / "k.bmp",
    }
    rgb.save(files["rgb_jpg"], quality=95)
    rgb.convert("L").save(files["gray"])
    rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(files["palette"])
    p = Image.new("P", (20, 20), 0)
    p.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    p.paste(1, (0, 0, 10, 20))                                       # left half index 1 (blue)
    p.save(files["palette_transparent"], transparency=0)            # index 0 (red) transparent
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 1] = 200
    rgba[:, :10, 3] = 255                                            # left opaque green
    Image.fromarray(rgba, "RGBA").save(files["rgba"])                # right fully transparent
    Image.fromarray(np.stack([np.full((20, 20), 50, np.uint8), rgba[..., 3]], -1), "LA").save(files["la"])
    rgb.convert("CMYK").save(files["cmyk"], quality=95)
    i16 = Image.fromarray(np.full((20, 20), 65535 // 2, np.uint16))  # mid gray, 16 bit
    assert i16.mode.startswith("I;16")
    i16.save(files["i16"])
    rgb.save(files["webp"], lossless=True)
    rgb.save(files["bmp"])
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.jpg").write_bytes(b"junk")                     # ignored (hidden)
    return files


def test_imagefolder_finds_and_converts_every_mode(tmp_path):
    files = _write_modes(tmp_path / "imgs")
    ds = ImageFolder(tmp_path / "imgs", resolution=16)
    assert len(ds) == len(files)                                     # recursive, any case, no txt
    assert sorted(map(str, ds.paths)) == sorted(map(str, files.values()))
    by_name = {p.name: i for i, p in enumerate(ds.paths)}
    for i in range(len(ds)):
        x = ds[i]
        assert x.shape == (3, 16, 16) and x.dtype == torch.float32
        assert x.min() >= -1 and x.max() <= 1
    unit = lambda name: (ds[by_name[name]] + 1) / 2                  # noqa: E731
    gray = unit("b_gray.PNG")
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    # 16-bit gray at half of 65535 -> about 0.5, not clipped to white
    torch.testing.assert_close(unit("h_i16.png"), torch.full((3, 16, 16), 0.5), atol=0.01, rtol=0)
    # mode "I" (what older PIL makes of 16-bit PNGs; PNG cannot store it) takes the same scale
    i32 = data._to_rgb(Image.fromarray(np.full((4, 4), 65535 // 4, np.int32), "I"))
    assert i32.mode == "RGB" and np.asarray(i32)[0, 0].tolist() == [64, 64, 64]
    # transparency is composited on white: right half of the RGBA image is white
    rgba = unit("e_rgba.png")
    torch.testing.assert_close(rgba[:, :, 12:], torch.ones(3, 16, 4))
    torch.testing.assert_close(rgba[:, :, :4], torch.tensor([0, 200 / 255, 0])[:, None, None].expand(3, 16, 4))
    ptrans = unit("d_ptrans.png")
    torch.testing.assert_close(ptrans[:, :, 12:], torch.ones(3, 16, 4))          # transparent red -> white
    torch.testing.assert_close(ptrans[:, :, :4], torch.tensor([0., 0, 1])[:, None, None].expand(3, 16, 4))
    la = unit("f_la.png")
    torch.testing.assert_close(la[:, :, 12:], torch.ones(3, 16, 4))
    # lossless formats keep the gradient: compare with PIL's own crop + resize of the array
    ref = Image.fromarray(_gradient()[:, 5:35]).resize((16, 16), Image.Resampling.BICUBIC)
    ref = torch.from_numpy(np.asarray(ref).copy()).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(unit("k.bmp"), ref)
    torch.testing.assert_close(unit("j.webp"), ref)
    # lossy ones (JPEG, CMYK JPEG) are close to it
    assert (unit("a_rgb.jpg") - ref).abs().mean() < 0.03
    assert (unit("g_cmyk.JPEG") - ref).abs().mean() < 0.05


def test_imagefolder_centre_crop_keeps_the_middle(tmp_path):
    """A wide image: the left and right thirds are cut away, only the centre square stays."""
    a = np.zeros((30, 90, 3), np.uint8)
    a[:, 30:60] = (255, 255, 0)                                      # centre square yellow
    (tmp_path / "w").mkdir()
    Image.fromarray(a).save(tmp_path / "w" / "wide.png")
    x = ImageFolder(tmp_path / "w", 8)[0]
    torch.testing.assert_close(x, torch.tensor([1., 1, -1])[:, None, None].expand(3, 8, 8))


def test_imagefolder_skips_corrupt_files_with_one_warning(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(_gradient()).save(folder / f"good{i}.png")
    (folder / "bad0.jpg").write_bytes(b"not a jpeg at all")
    buf = io.BytesIO()
    Image.fromarray(_gradient(200, 200)).save(buf, "JPEG")
    (folder / "bad1.jpg").write_bytes(buf.getvalue()[:300])          # truncated
    (folder / "bad2.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")

    # lazily: a whole epoch runs, bad files are replaced by the next good one, one warning
    ds = ImageFolder(folder, 16)
    assert len(ds) == 7
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        epoch = [ds[i] for i in range(len(ds))]
    assert len([w for w in caught if issubclass(w.category, RuntimeWarning)]) == 1
    assert len(ds.bad_files) == 3 and all(x.shape == (3, 16, 16) for x in epoch)
    names = sorted(p.name for p in ds.paths)
    assert torch.equal(epoch[names.index("bad0.jpg")], epoch[names.index("good0.png")])

    # up front: validate=True drops them with ONE warning that counts them
    with pytest.warns(RuntimeWarning, match="skipped 3 of 7") as record:
        ds = ImageFolder(folder, 16, validate=True)
    assert len(record) == 1 and len(ds) == 4

    # a DataLoader with workers gets every batch
    loader = torch.utils.data.DataLoader(ImageFolder(folder, 16), batch_size=7, num_workers=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (batch,) = list(loader)
    assert batch.shape == (7, 3, 16, 16)


def test_imagefolder_missing_or_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"'.*nowhere'.*\.jpg.*\.png.*\.webp.*\.bmp"):
        ImageFolder(tmp_path / "nowhere", 64)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"no images in '.*empty'.*\.jpeg"):
        ImageFolder(tmp_path / "empty", 64)
    with pytest.raises(ValueError, match="^resolution:"):
        ImageFolder(tmp_path, 100)
    with pytest.raises(ValueError, match="^root:"):
        ImageFolder(3, 64)


def test_imagefolder_all_bad_raises(tmp_path):
    (tmp_path / "x.png").write_bytes(b"nope")
    with pytest.raises(FileNotFoundError, match="could be decoded"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ImageFolder(tmp_path, 16, validate=True)


# ----------------------------------------------------------------------------------------
# The anime-faces download.
#
# Kaggle cannot be reached from the machines that run these tests, so the network call
# (``fetch``) is replaced by a function that writes a small zip made here with the Kaggle
# dataset's layout (a folder ``images/`` with files like ``1_2019.jpg``). Everything after
# the network call -- the zip check, extraction, the completion marker, reuse and repair --
# runs for real.

N_FAKE = 5


def _fake_zip(path: Path, n: int = N_FAKE) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray(_gradient(24 + i, 24)).save(buf, "JPEG")
            zf.writestr(f"images/{i + 1}_{2000 + i}.jpg", buf.getvalue())
    return path


class FakeKaggle:
    """Stands in for the kaggle download: writes the zip where kaggle would, counts calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, dataset, dest, force=False):
        assert dataset == "splcher/animefacedataset"
        self.calls.append(force)
        return _fake_zip(Path(dest) / "animefacedataset.zip")


def test_download_then_reuse_complete(tmp_path):
    fake = FakeKaggle()
    images = download_anime_faces(tmp_path, fetch=fake)
    assert fake.calls == [False]
    assert images == tmp_path / "anime_faces" / "images"
    assert sorted(p.name for p in images.iterdir())[:2] == ["1_2000.jpg", "2_2001.jpg"]
    marker = json.loads((tmp_path / "anime_faces" / "COMPLETE.json").read_text())
    assert marker["images"] == N_FAKE
    ds = ImageFolder(images, 16)
    assert len(ds) == N_FAKE and ds[0].shape == (3, 16, 16)
    # a complete download is reused: no network call, no re-extraction
    (tmp_path / "animefacedataset.zip").unlink()
    assert download_anime_faces(tmp_path, fetch=fake) == images
    assert fake.calls == [False]
    assert make_dataset("anime", 16, root=tmp_path).__len__() == N_FAKE


def test_download_finishes_a_cut_off_zip(tmp_path):
    good = _fake_zip(tmp_path / "full.zip").read_bytes()
    (tmp_path / "animefacedataset.zip").write_bytes(good[: len(good) // 2])   # download cut off
    fake = FakeKaggle()
    images = download_anime_faces(tmp_path, fetch=fake)
    assert fake.calls == [False]                          # asked kaggle to finish it
    assert len(list(images.iterdir())) == N_FAKE


def test_download_redoes_an_interrupted_extraction(tmp_path):
    fake = FakeKaggle()
    _fake_zip(tmp_path / "animefacedataset.zip")          # zip complete, extraction cut off:
    (tmp_path / ".anime_faces.partial-abc" / "images").mkdir(parents=True)    # a stale temp dir
    (tmp_path / "anime_faces" / "images").mkdir(parents=True)                  # no marker
    (tmp_path / "anime_faces" / "images" / "1_2000.jpg").write_bytes(b"half")
    images = download_anime_faces(tmp_path, fetch=fake)
    assert fake.calls == []                                # extracted from the zip already there
    assert len(list(images.iterdir())) == N_FAKE
    assert not list(tmp_path.glob(".anime_faces.partial-*"))
    assert len(ImageFolder(images, 16, validate=True)) == N_FAKE
    # a file lost after completion makes the copy incomplete -> extracted again
    next(images.iterdir()).unlink()
    assert data.anime_faces_ready(tmp_path) is None
    download_anime_faces(tmp_path, fetch=fake)
    assert data.anime_faces_ready(tmp_path) == images and fake.calls == []


def test_download_replaces_a_corrupt_zip(tmp_path):
    zpath = _fake_zip(tmp_path / "animefacedataset.zip")
    raw = bytearray(zpath.read_bytes())
    start = raw.index(b"\xff\xd8")                          # inside the first jpg's data
    raw[start + 200: start + 260] = bytes(60)               # CRC no longer matches
    zpath.write_bytes(bytes(raw))
    assert zipfile.is_zipfile(zpath)
    fake = FakeKaggle()
    images = download_anime_faces(tmp_path, fetch=fake)
    assert fake.calls == [True]                             # downloaded again from scratch
    assert len(list(images.iterdir())) == N_FAKE


def test_download_gives_up_on_a_zip_that_stays_broken(tmp_path):
    def broken(dataset, dest, force=False):
        p = Path(dest) / "animefacedataset.zip"
        p.write_bytes(b"PK not really")
        return p

    with pytest.raises(RuntimeError, match="still unusable"):
        download_anime_faces(tmp_path, fetch=broken)


def _no_credentials(monkeypatch, home: Path):
    monkeypatch.setenv("HOME", str(home))
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR",
                "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)


def test_no_credentials_short_error(tmp_path, monkeypatch):
    _no_credentials(monkeypatch, tmp_path / "home")
    assert data.kaggle_credentials_found() is None
    import sys
    kaggle_loaded = "kaggle" in sys.modules
    with pytest.raises(KaggleCredentialsError) as info:
        download_anime_faces(tmp_path / "data")            # the real fetch: stops before kaggle
    assert ("kaggle" in sys.modules) == kaggle_loaded      # (importing kaggle would try to log in)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 300
    assert "~/.kaggle/kaggle.json" in msg and "KAGGLE_USERNAME" in msg and "KAGGLE_KEY" in msg
    assert info.value._render_traceback_() == [f"KaggleCredentialsError: {msg}"]  # no traceback in Jupyter
    # the command line prints the one line and exits with 1
    assert data.main(["download-anime", "--root", str(tmp_path / "data")]) == 1


def test_credentials_found_never_reveals_the_key(tmp_path, monkeypatch):
    _no_credentials(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    assert data.kaggle_credentials_found() is None          # a user name alone is not enough
    monkeypatch.setenv("KAGGLE_KEY", "s3cr3t-key-123")
    found = data.kaggle_credentials_found()
    assert found and "s3cr3t" not in found
    monkeypatch.delenv("KAGGLE_KEY")
    (tmp_path / "home" / ".kaggle").mkdir(parents=True)
    (tmp_path / "home" / ".kaggle" / "kaggle.json").write_text('{"username": "x", "key": "s3cr3t"}')
    found = data.kaggle_credentials_found()
    assert found.endswith("kaggle.json") and "s3cr3t" not in found


# ----------------------------------------------------------------------------------------
# sample photo and make_dataset

def test_sample_photo():
    full = sample_photo()
    assert full.shape == (3, 600, 512) and full.dtype == torch.float32
    assert 0 <= full.min() and full.max() <= 1
    small = sample_photo(64)
    assert small.shape == (3, 64, 64)
    # the small one is the centre square of the full photo, downscaled: same mean colour
    centre = full[:, 44:556, :]
    torch.testing.assert_close(small.mean(dim=(1, 2)), centre.mean(dim=(1, 2)), atol=0.01, rtol=0)
    with pytest.raises(ValueError, match="^resolution:"):
        sample_photo(0)


def test_sample_photo_does_not_import_matplotlib():
    import subprocess
    import sys
    code = "import sys, histolib.data as d; d.sample_photo(32); print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_make_dataset(tmp_path):
    toy = make_dataset("toy", 32, size=12, seed=4)
    assert isinstance(toy, ToyFaces) and len(toy) == 12 and toy[0].shape == (3, 32, 32)
    Image.fromarray(_gradient()).save(tmp_path / "one.png")
    folder = make_dataset(str(tmp_path), 16)
    assert isinstance(folder, ImageFolder) and len(folder) == 1
    with pytest.raises(ValueError, match="^spec:.*'toy', 'anime' or an image folder"):
        make_dataset("toys", 32)
    with pytest.raises(ValueError, match="^spec:"):
        make_dataset(3, 32)
    with pytest.raises(ValueError, match="^resolution:"):
        make_dataset("toy", 33)


def test_recoloured_takes_shape_from_one_face_and_colours_from_another():
    from histolib.histogram import hellinger_distance, rgb_uv_histogram
    shapes, colours = ToyFaces(size=16, resolution=32, seed=5), ToyFaces(size=16, resolution=32, seed=6)
    idx = list(range(16))
    torch.testing.assert_close(shapes.recoloured(idx, shapes, idx), shapes.batch(idx), rtol=0, atol=1e-6)
    mixed = shapes.recoloured(idx, colours, idx[::-1])
    hist = lambda x: rgb_uv_histogram((x + 1) / 2, bins=16, sigma=0.1)
    to_donor = hellinger_distance(hist(mixed), hist(colours.batch(idx[::-1])))
    to_shape = hellinger_distance(hist(mixed), hist(shapes.batch(idx)))
    assert (to_donor < to_shape).float().mean() > 0.8 and to_donor.mean() < 0.5 * to_shape.mean()
    # the layout is the shape face's: its outline (where the image changes) is far closer to the
    # shape face's than to the colour donor's
    def outline(x):
        g = x.mean(1)
        return ((g[:, 1:, :] - g[:, :-1, :]).abs()[:, :, :-1] + (g[:, :, 1:] - g[:, :, :-1]).abs()[:, :-1, :]) > 0.05
    o_mixed, o_shape, o_donor = outline(mixed), outline(shapes.batch(idx)), outline(colours.batch(idx[::-1]))
    same_as_shape = (o_mixed == o_shape).float().mean()
    same_as_donor = (o_mixed == o_donor).float().mean()
    assert same_as_shape > same_as_donor + 0.05, (same_as_shape, same_as_donor)
    with pytest.raises(ValueError, match="same non-zero length"):
        shapes.recoloured([0, 1], colours, [0])
