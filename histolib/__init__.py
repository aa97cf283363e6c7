"""histolib: HistoGAN rebuilt from its parts.

The package under the HistoGAN notebook series. Modules, upstream first:

    images        range conversions ([-1, 1] <-> [0, 1]), device, seed and quick-mode helpers
    data          ToyFaces (built in), ImageFolder, the Kaggle anime faces, a sample photo
    histogram     the RGB-uv colour histogram, Hellinger / KL, interpolation, training targets
    recolor       recolour an image by gradient descent on its pixels towards a target histogram
    config        HistoGANConfig and its presets (toy, paper)
    layers        equalized-lr layers, the modulated convolution (unfold / grouped / scaled)
    generator     HistoGAN: mapping, histogram projection, synthesis
    discriminator the residual discriminator
    losses        adversarial losses and regularisers, the histogram loss
    train         TrainConfig, the Trainer, ``python -m histolib.train``
    viz, widgets  drawing (matplotlib) and sliders (ipywidgets); imported only on use

``import histolib`` is cheap: submodules load on first attribute access, so neither
torch nor matplotlib is imported until you use them.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = {
    "images", "data", "histogram", "config", "layers", "generator", "discriminator",
    "losses", "train", "checkpoint", "viz", "widgets", "metrics", "pretrained", "generate", "evaluate", "recolor",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'histolib' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
