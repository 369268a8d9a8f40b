"""Per-example image augmentations on batched tensors: crop + flip and RandAugment.

Inputs are normalised batches ``(B, C, H, W)`` on any device; every random choice comes
from the ``torch.Generator`` passed in (on the batch's device), never the global RNG.

torchvision is imported on RandAugment's first use (:func:`_tf`): its import pulls in
``torch._dynamo`` and costs about 1.3 s of every process that imports this package, which
is every command (``benchmarks/results/import_time.md``).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor


@functools.cache
def _tf():
    """``torchvision.transforms.v2.functional``, imported once, when first needed."""
    import torchvision.transforms.v2.functional as tf

    return tf


class CropFlip:
    """Random crop with ``padding`` pixels of black on each side, then a horizontal flip
    with probability 1/2 where ``hflip`` (budgeted-importance-sampling.txt section 4.1:
    "random cropping with padding of 4 pixels per side and random horizontal flip", no
    flip for SVHN / digits).

    ``mean``/``std`` (C, 1, 1) are the normalisation of ``x``, so padding is true black.
    """

    def __init__(self, padding: int = 4, hflip: bool = True, mean: Tensor | None = None,
                 std: Tensor | None = None):
        self.padding = int(padding)
        self.hflip = bool(hflip)
        self.mean, self.std = mean, std

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        b, c, h, w = x.shape
        p = self.padding
        black = _black(x, self.mean, self.std)
        padded = black.expand(b, c, h + 2 * p, w + 2 * p).clone()
        padded[:, :, p:p + h, p:p + w] = x
        dev = x.device
        oy = torch.randint(0, 2 * p + 1, (b,), generator=generator, device=dev)
        ox = torch.randint(0, 2 * p + 1, (b,), generator=generator, device=dev)
        rows = (oy[:, None] + torch.arange(h, device=dev))[:, None, :, None]  # (B,1,H,1)
        cols = (ox[:, None] + torch.arange(w, device=dev))[:, None, None, :]  # (B,1,1,W)
        bi = torch.arange(b, device=dev)[:, None, None, None]
        ci = torch.arange(c, device=dev)[None, :, None, None]
        out = padded[bi, ci, rows, cols]
        if self.hflip:
            flip = torch.rand(b, generator=generator, device=dev) < 0.5
            out = torch.where(flip[:, None, None, None], out.flip(-1), out)
        return out


def _black(x: Tensor, mean: Tensor | None, std: Tensor | None) -> Tensor:
    """(1, C, 1, 1) the normalised value of a black pixel (0 when ``x`` is not normalised)."""
    if mean is None or std is None:
        return torch.zeros(1, x.shape[1], 1, 1, device=x.device, dtype=x.dtype)
    return (-mean / std).to(x.device, x.dtype).reshape(1, -1, 1, 1)


# RandAugment's 14 operations and their magnitude at level M of 30 (Cubuk et al. 2020; the
# ranges of torchvision.transforms.RandAugment, num_magnitude_bins=31).
def _shear_x(x, m):
    return _tf().affine(x, angle=0.0, translate=[0, 0], scale=1.0,
                        shear=[math.degrees(math.atan(m)), 0.0], center=[0, 0])


def _shear_y(x, m):
    return _tf().affine(x, angle=0.0, translate=[0, 0], scale=1.0,
                        shear=[0.0, math.degrees(math.atan(m))], center=[0, 0])


def _translate_x(x, m):
    return _tf().affine(x, angle=0.0, translate=[int(m * x.shape[-1]), 0], scale=1.0,
                        shear=[0.0, 0.0])


def _translate_y(x, m):
    return _tf().affine(x, angle=0.0, translate=[0, int(m * x.shape[-2])], scale=1.0,
                        shear=[0.0, 0.0])


def _posterize(x, bits):
    return _tf().posterize((x * 255).round().to(torch.uint8), int(bits)).to(x.dtype) / 255


# name -> (op(x in [0,1], magnitude), max magnitude at level 30, signed)
RANDAUGMENT_OPS = {
    "identity": (lambda x, m: x, 0.0, False),
    "shear_x": (_shear_x, 0.3, True),
    "shear_y": (_shear_y, 0.3, True),
    "translate_x": (_translate_x, 150.0 / 331.0, True),
    "translate_y": (_translate_y, 150.0 / 331.0, True),
    "rotate": (lambda x, m: _tf().rotate(x, m), 30.0, True),
    "brightness": (lambda x, m: _tf().adjust_brightness(x, 1.0 + m), 0.9, True),
    "color": (lambda x, m: _tf().adjust_saturation(x, 1.0 + m), 0.9, True),
    "contrast": (lambda x, m: _tf().adjust_contrast(x, 1.0 + m), 0.9, True),
    "sharpness": (lambda x, m: _tf().adjust_sharpness(x, 1.0 + m), 0.9, True),
    "posterize": (_posterize, None, False),  # bits: 8 - round(M / 7.5)
    "solarize": (lambda x, m: _tf().solarize(x, m), None, False),  # threshold 1 - M / 30
    "autocontrast": (lambda x, m: _tf().autocontrast(x), 0.0, False),
    "equalize": (lambda x, m: _tf().equalize(x), 0.0, False),
}


class RandAugment:
    """RandAugment (Cubuk et al., 2020) with ``n`` ops per image at magnitude ``m`` of 30;
    the paper's setting is N = 2, M = 4 (section 4.5, Table 3).

    Each example draws its own ops (uniformly from :data:`RANDAUGMENT_OPS`) and, for signed
    ops, its own sign; each op runs once per batch on the examples that drew it. Ops act on
    ``[0, 1]`` pixels, so ``x`` is un-normalised with ``mean``/``std`` and re-normalised.
    """

    def __init__(self, n: int = 2, m: int = 4, mean: Tensor | None = None,
                 std: Tensor | None = None):
        self.n, self.m = int(n), int(m)
        self.mean, self.std = mean, std
        self.names = list(RANDAUGMENT_OPS)

    def magnitude(self, name: str) -> float:
        if name == "posterize":
            return 8 - round(self.m / 7.5)
        if name == "solarize":
            return 1.0 - self.m / 30.0
        return RANDAUGMENT_OPS[name][1] * self.m / 30.0

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        b, dev = x.shape[0], x.device
        mean = self.mean.to(dev, x.dtype) if self.mean is not None else None
        std = self.std.to(dev, x.dtype) if self.std is not None else None
        img = (x * std + mean) if mean is not None else x
        img = img.clamp(0.0, 1.0)
        ops = torch.randint(0, len(self.names), (self.n, b), generator=generator, device=dev)
        signs = torch.randint(0, 2, (self.n, b), generator=generator, device=dev)
        for r in range(self.n):
            out = img.clone()
            for k, name in enumerate(self.names):
                fn, _, signed = RANDAUGMENT_OPS[name]
                mag = self.magnitude(name)
                groups = ((ops[r] == k) & (signs[r] == 0), (ops[r] == k) & (signs[r] == 1)) \
                    if signed else ((ops[r] == k),)
                for g, mask in enumerate(groups):
                    sel = mask.nonzero().flatten()
                    if len(sel):
                        out[sel] = fn(img[sel], -mag if g == 1 else mag).clamp(0.0, 1.0)
            img = out
        return (img - mean) / std if mean is not None else img
