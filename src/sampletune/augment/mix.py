"""Interpolating augmentations: mixup and RICAP, as :data:`sampletune.train.hooks.Mixer`.

Each returns a :class:`~sampletune.train.hooks.MixedBatch`: the mixed input and, for every
mixed example, its K source labels, their shares (rows sum to one) and the sources' batch
positions, so the loss is ``sum_k share_k * CE(logits, label_k)`` and every source is
credited with the mixed examples it fed (for p-SGD / c-SGD and selective backprop).
"""

from __future__ import annotations

import scipy.special
import torch
from torch import Tensor

from sampletune.errors import check
from sampletune.train.hooks import MixedBatch


def sample_beta(alpha: float, generator: torch.Generator, k: int = 1) -> list[float]:
    """``k`` draws from Beta(alpha, alpha) by inverse CDF of uniforms from ``generator``."""
    u = torch.rand(k, generator=generator, device=generator.device, dtype=torch.float64)
    return [float(v) for v in scipy.special.betaincinv(alpha, alpha, u.cpu().numpy())]


class Mixup:
    """mixup (Zhang et al., 2018): ``x = lam x_i + (1 - lam) x_perm(i)``, one
    ``lam ~ Beta(alpha, alpha)`` per batch; the paper uses alpha = 0.3 (Table 3)."""

    def __init__(self, alpha: float = 0.3):
        check(alpha > 0, "alpha", f"{alpha} must be positive", "> 0")
        self.alpha = float(alpha)

    def __call__(self, x: Tensor, y: Tensor, generator: torch.Generator) -> MixedBatch:
        (lam,) = sample_beta(self.alpha, generator)
        b = x.shape[0]
        perm = torch.randperm(b, generator=generator, device=generator.device).to(x.device)
        pos = torch.arange(b, device=x.device)
        mixed = lam * x + (1.0 - lam) * x[perm]
        shares = torch.tensor([lam, 1.0 - lam], device=x.device, dtype=x.dtype).expand(b, 2)
        return MixedBatch(mixed, torch.stack([y, y[perm]], 1), shares.contiguous(),
                          torch.stack([pos, perm], 1))


class RICAP:
    """RICAP (Takahashi et al., 2018): four crops from four random permutations of the batch
    are patched into one image at a boundary ``(w, h) = (round(W beta1), round(H beta2))``,
    ``beta ~ Beta(alpha, alpha)``; each label's share is its patch area. alpha = 0.3 here.
    All four patches are credited (not only the first)."""

    def __init__(self, alpha: float = 0.3):
        check(alpha > 0, "alpha", f"{alpha} must be positive", "> 0")
        self.alpha = float(alpha)

    def __call__(self, x: Tensor, y: Tensor, generator: torch.Generator) -> MixedBatch:
        b, _, height, width = x.shape
        bw, bh = sample_beta(self.alpha, generator, 2)
        w, h = round(width * bw), round(height * bh)
        ws, hs = (w, width - w, w, width - w), (h, h, height - h, height - h)
        gdev = generator.device
        patches, labels, sources, shares = [], [], [], []
        for k in range(4):
            perm = torch.randperm(b, generator=generator, device=gdev).to(x.device)
            cx = int(torch.randint(0, width - ws[k] + 1, (1,), generator=generator, device=gdev))
            cy = int(torch.randint(0, height - hs[k] + 1, (1,), generator=generator, device=gdev))
            patches.append(x[perm][:, :, cy:cy + hs[k], cx:cx + ws[k]])
            labels.append(y[perm])
            sources.append(perm)
            shares.append(ws[k] * hs[k] / (width * height))
        top = torch.cat(patches[:2], dim=3)
        bottom = torch.cat(patches[2:], dim=3)
        mixed = torch.cat([top, bottom], dim=2)
        share = torch.tensor(shares, device=x.device, dtype=x.dtype).expand(b, 4).contiguous()
        return MixedBatch(mixed, torch.stack(labels, 1), share, torch.stack(sources, 1))
