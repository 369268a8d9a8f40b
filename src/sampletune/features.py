"""Per-example features of a split from a trained model, and their cdf normalisation.

Features (swift-sampler.txt, sections 3.2 and 4), each a float64 tensor ``(n,)`` indexed like
the split:

- ``loss``: cross-entropy of the (possibly noisy) training label, in nats.
- ``renormed_entropy``: eq. 11, entropy of the prediction with the target class dropped and
  the rest renormalised, in nats.
- ``grad_norm``: L2 norm of the per-example gradient of the loss w.r.t. the logit layer's
  weight and bias (exact, closed form).
- ``grad_norm_full`` (optional, ``full_grad=True``): L2 norm of the per-example gradient
  w.r.t. all parameters, through ``torch.func``.

The model is used in eval mode, without augmentation. Features are saved as ``.npz`` (no
pickles) keyed by data set, split, seed and model, and checked against the split size when
loaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from sampletune.errors import ConfigError, check
from sampletune.io import load_numpy, save_npz

FEATURE_NAMES = ("loss", "renormed_entropy", "grad_norm", "grad_norm_full")


@dataclass(frozen=True)
class FeatureKey:
    """What a feature file was computed from. ``dataset`` should name the noise setting too
    (e.g. ``digits-sym0.4``) since the labels decide the features."""

    dataset: str
    split: str
    seed: int
    model: str

    def filename(self) -> str:
        safe = [str(p).replace("/", "_").replace(":", "_") for p in
                (self.dataset, self.split, f"seed{self.seed}", self.model)]
        return "-".join(safe) + ".npz"


class EmpiricalCdf:
    """The empirical cdf of a reference sample, ``F(u) = #{j : r_j <= u} / n`` (eq. 7).

    ``reference`` ``(n,)`` is sorted once; calling the object on values ``(m,)`` (any, e.g. the
    features of new crops) gives float64 ``(m,)`` in ``[0, 1]`` by one ``searchsorted``, on
    ``device``. NaN anywhere is a :class:`ConfigError`.
    """

    def __init__(self, reference: Tensor, device: str | torch.device = "cpu"):
        ref = _finite_float64(reference)
        check(ref.numel() > 0, "features", "cannot normalise an empty feature")
        self.sorted = torch.sort(ref).values.to(device)

    def __call__(self, values: Tensor) -> Tensor:
        v = _finite_float64(values).to(self.sorted.device)
        return torch.searchsorted(self.sorted, v, right=True).to(torch.float64) / len(self.sorted)


def cdf_normalise(values: Tensor) -> Tensor:
    """Eq. 7 on the values themselves: ``F(x_i) = #{j : x_j <= x_i} / n``, float64 in ``(0, 1]``.

    Ties share one value (the largest rank in the tie), so equal inputs always map to equal
    outputs and the map is monotone. ``values`` is ``(n,)``; NaN is a :class:`ConfigError`.
    """
    return EmpiricalCdf(values)(values)


def _finite_float64(values: Tensor) -> Tensor:
    v = torch.as_tensor(values).detach().to(torch.float64).flatten().contiguous()
    check(not bool(torch.isnan(v).any()), "features", "NaN feature values", "finite")
    return v


def renormed_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Eq. 11: ``-sum_{j != y} q_j log q_j`` with ``q_j = p_j / sum_{k != y} p_k``.

    ``logits`` ``(B, C)``, ``target`` ``(B,)`` int64 -> ``(B,)`` in nats, in ``[0, log(C-1)]``.
    Computed in log space so a near-one target probability stays finite.
    """
    logp = F.log_softmax(logits.double(), dim=1)
    mask = F.one_hot(target, logits.shape[1]).bool()
    rest = logp.masked_fill(mask, -math.inf)
    logq = rest - torch.logsumexp(rest, dim=1, keepdim=True)
    q = logq.exp()
    return -(q * logq.masked_fill(mask, 0.0)).sum(dim=1)


def logit_layer(model: nn.Module) -> nn.Linear:
    """The last ``nn.Linear`` registered in ``model`` (assumed to produce the logits)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError("model", "has no nn.Linear logit layer for the closed-form gradient "
                          "norm", "a model ending in nn.Linear, or full_grad=True")
    return linears[-1]


def last_layer_grad_norm(hidden: Tensor, logits: Tensor, target: Tensor, bias: bool) -> Tensor:
    """Exact per-example norm of dCE/d(W, b) for ``logits = hidden @ W.T + b``.

    ``dCE/dW = (p - e_y) h^T`` and ``dCE/db = p - e_y``, so the norm is
    ``||p - e_y|| * sqrt(||h||^2 + bias)``. Shapes: hidden ``(B, D)``, logits ``(B, C)``.
    """
    p = torch.softmax(logits.double(), dim=1)
    r = p - F.one_hot(target, logits.shape[1]).double()
    h2 = hidden.double().flatten(1).pow(2).sum(1) + (1.0 if bias else 0.0)
    return r.norm(dim=1) * h2.sqrt()


def full_grad_norm(model: nn.Module, x: Tensor, y: Tensor, chunk: int = 32) -> Tensor:
    """Per-example L2 norm of dCE/d(all parameters) via ``torch.func`` (vmap of grad),
    ``chunk`` examples at a time so memory holds ``chunk x num_parameters`` gradients."""
    from torch.func import functional_call, grad, vmap

    params = {k: p.detach() for k, p in model.named_parameters()}
    buffers = {k: b.detach() for k, b in model.named_buffers()}

    def loss_one(p, xi, yi):
        out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    per_example = vmap(grad(loss_one), in_dims=(None, 0, 0))
    norms = []
    for start in range(0, len(x), chunk):
        grads = per_example(params, x[start : start + chunk], y[start : start + chunk])
        norms.append(sum(g.flatten(1).double().pow(2).sum(1) for g in grads.values()).sqrt())
    return torch.cat(norms)


@torch.no_grad()
def _forward_with_hidden(model: nn.Module, layer: nn.Linear, x: Tensor) -> tuple[Tensor, Tensor]:
    seen = {}

    def hook(_mod, inputs, output):
        seen["h"], seen["out"] = inputs[0], output

    handle = layer.register_forward_hook(hook)
    try:
        logits = model(x)
    finally:
        handle.remove()
    if "out" not in seen or seen["out"].shape != logits.shape or not torch.equal(
            seen["out"], logits):
        raise ConfigError("model", "its last nn.Linear does not produce the logits, so the "
                          "closed-form gradient norm does not apply", "full_grad=True")
    return seen["h"], logits


@torch.no_grad()
def batch_features(model: nn.Module, x: Tensor, y: Tensor,
                   names: tuple[str, ...] = FEATURE_NAMES[:3]) -> dict[str, Tensor]:
    """The features ``names`` of one batch ``x`` ``(B, *shape)``, ``y`` ``(B,)`` in a single
    forward pass of ``model`` in eval mode (restored after): ``{name: float64 (B,)}`` on
    ``x``'s device. ``grad_norm_full`` costs a per-example backward pass per chunk."""
    unknown = [k for k in names if k not in FEATURE_NAMES]
    check(not unknown, "features", f"unknown features {unknown}", ", ".join(FEATURE_NAMES))
    was_training = model.training
    model.eval()
    try:
        layer = logit_layer(model) if "grad_norm" in names else None
        hidden, logits = _forward_with_hidden(model, layer, x) if layer is not None \
            else (None, model(x))
        out = {}
        if "loss" in names:
            out["loss"] = F.cross_entropy(logits.double(), y, reduction="none")
        if "renormed_entropy" in names:
            out["renormed_entropy"] = renormed_entropy(logits, y)
        if layer is not None:
            out["grad_norm"] = last_layer_grad_norm(hidden, logits, y, layer.bias is not None)
        if "grad_norm_full" in names:  # torch.func.grad ignores the outer no_grad
            out["grad_norm_full"] = full_grad_norm(model, x, y)
    finally:
        model.train(was_training)
    return {k: out[k] for k in names}


def compute_features(model: nn.Module, x: Tensor | Dataset, y: Tensor, *, batch_size: int = 512,
                     device: str | torch.device = "cpu", full_grad: bool = False,
                     progress: bool = True) -> dict[str, Tensor]:
    """Features of every example of ``(x, y)``: ``x`` ``(n, *shape)`` or a ``Dataset`` of inputs,
    ``y`` ``(n,)`` labels, ``batch_size`` at a time (:func:`batch_features`).

    Returns ``{name: float64 (n,)}`` on the CPU with ``loss``, ``renormed_entropy``,
    ``grad_norm`` and, if ``full_grad``, ``grad_norm_full``. The model is put in eval mode
    and restored after.
    """
    check(batch_size >= 1, "batch_size", f"{batch_size} must be positive", ">= 1")
    n = int(y.shape[0])
    check(n >= 1, "features", "the split is empty")
    names = FEATURE_NAMES[: 4 if full_grad else 3]
    out: dict[str, list[Tensor]] = {k: [] for k in names}
    for s in _track(range(0, n, batch_size), progress, "features"):
        xb = _rows(x, s, min(n, s + batch_size)).to(device)
        feats = batch_features(model, xb, y[s: s + batch_size].to(device), names)
        for k in names:
            out[k].append(feats[k].cpu())
    return {k: torch.cat(v) for k, v in out.items()}


def save_features(path: str | Path, features: dict[str, Tensor], key: FeatureKey) -> Path:
    """Save ``features`` with its key and size as ``.npz``, atomically. Returns the path."""
    sizes = {int(v.numel()) for v in features.values()}
    check(len(sizes) == 1, "features", f"features have different lengths {sorted(sizes)}")
    save_npz(path, n=sizes.pop(), **{f"key_{k}": str(v) for k, v in key.__dict__.items()},
             **{f"feature_{k}": v.to(torch.float64).cpu().numpy() for k, v in features.items()})
    return Path(path)


def load_features(path: str | Path, n: int | None = None,
                  key: FeatureKey | None = None) -> dict[str, Tensor]:
    """Load a feature file; a size different from ``n`` or a key different from ``key`` is a
    :class:`ConfigError` (the features were fitted on another training set)."""
    path = Path(path)
    check(path.exists(), "feature_file", f"{path} does not exist")
    check(path.suffix == ".npz", "feature_file", f"{path} is not an .npz feature file (older "
          "sampletune wrote .pt, which is no longer read: loading it could run code)",
          "features recomputed by this version (swift search with --restart)")
    blob = load_numpy(path, "feature_file")
    feats = {k[len("feature_"):]: torch.from_numpy(v) for k, v in blob.items()
             if k.startswith("feature_")}
    n_ok = "n" in blob and blob["n"].shape == () and blob["n"].dtype.kind in "iu"
    size = int(blob["n"]) if n_ok else None
    check(size is not None and bool(feats) and all(
        v.dtype == torch.float64 and v.shape == (size,) for v in feats.values()),
        "feature_file", f"{path} is not a sampletune feature file", "one from swift search")
    if n is not None and size != n:
        raise ConfigError("feature_file", f"{path} holds {size} examples but the training "
                          f"set has {n}", "features computed on this training set")
    stored = {k[len("key_"):]: str(v) for k, v in blob.items() if k.startswith("key_")}
    if key is not None and stored != {k: str(v) for k, v in key.__dict__.items()}:
        raise ConfigError("feature_file", f"{path} was computed for {stored}, not "
                          f"{key.__dict__}")
    return feats


def cached_features(root: str | Path, key: FeatureKey, model: nn.Module, x: Tensor | Dataset,
                    y: Tensor, **kw) -> tuple[dict[str, Tensor], Path]:
    """Load ``root/<key>.npz`` if it exists (checked against ``len(y)``), else compute and save."""
    path = Path(root) / key.filename()
    if path.exists():
        return load_features(path, n=int(y.shape[0]), key=key), path
    feats = compute_features(model, x, y, **kw)
    return feats, save_features(path, feats, key)


def _rows(x: Tensor | Dataset, start: int, stop: int) -> Tensor:
    if isinstance(x, Tensor):
        return x[start:stop]
    return torch.stack([torch.as_tensor(x[i]) for i in range(start, stop)])


def _track(items, progress: bool, what: str):
    if not progress:
        return items
    from rich.progress import track

    return track(items, description=what, transient=True)
