"""Per-example features of a split (or of any ``DataLoader``) from a trained model, and their
cdf normalisation.

Features (swift-sampler.txt, sections 3.2 and 4), each a float64 tensor ``(n,)`` indexed like
the split:

- ``loss``: cross-entropy of the (possibly noisy) training label, in nats.
- ``renormed_entropy``: eq. 11, entropy of the prediction with the target class dropped and
  the rest renormalised, in nats.
- ``grad_norm``: L2 norm of the per-example gradient of the loss w.r.t. the logit layer's
  weight and bias (exact, closed form).
- ``grad_norm_full`` (optional, ``full_grad=True``): L2 norm of the per-example gradient
  w.r.t. all parameters, through ``torch.func``.
- ``train_loss``: the mean cross-entropy an example had in the training steps of the
  pre-trained model's first epochs, up to twice its best-validation epoch
  (:class:`TrainLossTracker`; a "loss statistic over training", not a function of one
  model). Noisy labels are learnt late, so
  their early training losses stay high: it flags them better than the loss under any one
  checkpoint (``benchmarks/results/loss_statistics.md``).
- ``class_train_loss``: ``train_loss`` less the typical ``train_loss`` of a clean example
  of the same labelled class (:func:`class_relative`). A hard class's clean examples have
  higher losses than an easy class's, so a cut on ``train_loss`` drops them with the noisy
  labels; on this feature each class is measured against its own clean examples. An
  option (``--features class_train_loss renormed_entropy``): it helped on some seen sets
  and lost the held-out check (``benchmarks/results/swift_noise.md``, round 7).

The other features use the model in eval mode, without augmentation. Features are saved as
``.npz`` (no pickles) keyed by data set, split, seed and model, and checked against the split
size when loaded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, SequentialSampler

from sampletune.errors import ConfigError, check, check_flag, check_int
from sampletune.io import describe_error, load_numpy, save_npz
from sampletune.models import eval_mode

TRAIN_LOSS = "train_loss"
MODEL_FEATURES = ("loss", "renormed_entropy", "grad_norm", "grad_norm_full")  # of one model
CLASS_TRAIN_LOSS = "class_train_loss"
FEATURE_NAMES = (*MODEL_FEATURES, TRAIN_LOSS, CLASS_TRAIN_LOSS)


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
    _check_logits(logits, len(x))
    if "out" not in seen or seen["out"].shape != logits.shape or not torch.equal(
            seen["out"], logits):
        raise ConfigError("model", "its last nn.Linear does not produce the logits, so the "
                          "closed-form gradient norm does not apply", "full_grad=True")
    return seen["h"], logits


def _check_labels(y: Tensor, field: str) -> None:
    """One-line errors unless ``y`` is ``(B,)`` non-negative integer (not bool) class ids."""
    ok = y.dim() == 1 and not (y.is_floating_point() or y.is_complex() or y.dtype == torch.bool)
    check(ok, field, f"labels of shape {tuple(y.shape)} and dtype {y.dtype}",
          "(B,) integer class ids")
    low = int(y.min()) if len(y) else 0
    check(low >= 0, field, f"negative class id {low}", "integer class ids >= 0")


def _check_logits(logits, batch: int) -> None:
    """One-line errors unless the model's output is finite real ``(batch, C)``, ``C >= 2``."""
    check(isinstance(logits, Tensor), "model", f"returns a {type(logits).__name__}",
          "a (B, C) logits tensor")
    check(logits.dim() == 2 and len(logits) == batch and logits.is_floating_point(), "model",
          f"returns {tuple(logits.shape)} {logits.dtype} for {batch} inputs",
          "(B, C) float logits")
    check(logits.shape[1] >= 2, "model", f"gives {logits.shape[1]} class(es)",
          "logits of C >= 2 classes")
    check(bool(torch.isfinite(logits).all()), "model", "gives NaN or infinite logits",
          "a model that did not diverge")


def _in_dataset_order(loader) -> str | None:
    """``None`` if ``loader``'s ``(x, y)`` batches come in dataset order, else what it is."""
    if isinstance(loader, list | tuple):
        return None  # batches the caller wrote out in order
    if not isinstance(loader, DataLoader):
        return f"a {type(loader).__name__}"
    batches = loader.batch_sampler
    sampler = batches.sampler if isinstance(batches, BatchSampler) else (
        loader.sampler if batches is None else batches)
    if not isinstance(sampler, SequentialSampler):
        return f"a DataLoader with a {type(sampler).__name__}"
    if not getattr(loader, "in_order", True):
        return "a DataLoader with in_order=False"
    return None


@torch.no_grad()
def compute_features(model: nn.Module, x: Tensor | Dataset, y: Tensor, *, batch_size: int = 512,
                     device: str | torch.device = "cpu", full_grad: bool = False,
                     progress: bool = True) -> dict[str, Tensor]:
    """Features of every example of ``(x, y)``: ``x`` ``(n, *shape)`` or a ``Dataset`` of inputs,
    ``y`` ``(n,)`` labels, ``batch_size`` at a time (:func:`batch_features`).

    Returns ``{name: float64 (n,)}`` on the CPU with ``loss``, ``renormed_entropy``,
    ``grad_norm`` and, if ``full_grad``, ``grad_norm_full``. The model is put in eval mode
    and restored after. ``x`` goes to the model as it is, never cast: a model that fails on
    it because its dtype is not the model's parameters' (uint8 images, float64 inputs to a
    float32 model) or because it holds one value per example is a one-line
    :class:`ConfigError` naming ``x``.
    """
    _check_model(model)
    check_int(batch_size, "batch_size", 1)
    check_flag(full_grad, "full_grad")
    check_flag(progress, "progress")
    check(isinstance(y, Tensor), "y", f"is a {type(y).__name__}", "a (n,) integer tensor")
    _check_labels(y, "y")
    n = int(y.shape[0])
    check(n >= 1, "features", "the split is empty")
    if hasattr(x, "__len__"):
        check(len(x) == n, "x", f"{len(x)} inputs for {n} labels", "one input per label")
    y = y.long()
    starts = _track(range(0, n, batch_size), progress, "features")
    batches = ((_rows(x, s, min(n, s + batch_size)), y[s: s + batch_size]) for s in starts)
    with eval_mode(model):
        parts = [_input_features(model, xb, yb, device, full_grad, "x") for xb, yb in batches]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def features_from_loader(model: nn.Module, loader: Iterable, *, n: int | None = None,
                         device: str | torch.device = "cpu", full_grad: bool = False,
                         progress: bool = False) -> dict[str, Tensor]:
    """Features (as :func:`compute_features`) of every example a loader yields.

    ``loader`` is any iterable of batches, e.g. a ``DataLoader``: either ``(x, y)``, in
    dataset order (a loader that does not shuffle), or ``(index, x, y)`` with ``index``
    ``(B,)`` the examples' positions in ``[0, n)``, in any order (repeats are computed
    again and give the same values). ``x`` ``(B, *shape)``, ``y`` ``(B,)`` integer class ids.
    ``n`` defaults to ``len(loader.dataset)``; with indexed batches every position in
    ``[0, n)`` must be yielded. Returns ``{name: float64 (n,)}``, position ``i`` = example
    ``i``. The model is put in eval mode and restored after.

    ``(x, y)`` batches are taken in dataset order only from a ``DataLoader`` drawing by a
    ``SequentialSampler`` (``shuffle=False``, no ``sampler=``/``batch_sampler=`` of another
    kind) or from a list or tuple of batches; any other source of them (a shuffling or
    weighted sampler, a generator) is a :class:`ConfigError`: yield ``(index, x, y)``.
    Inputs the model cannot take are refused as by :func:`compute_features`, naming
    ``loader``.
    """
    _check_model(model)
    check_flag(full_grad, "full_grad")
    check_flag(progress, "progress")
    if n is not None:
        check_int(n, "n", 1)
    ordered = _in_dataset_order(loader)
    if n is None and isinstance(loader, DataLoader) and hasattr(loader.dataset, "__len__"):
        n = len(loader.dataset)
    indices, parts = [], []
    with eval_mode(model):
        for batch in _track(loader, progress, "features"):
            check(isinstance(batch, tuple | list) and len(batch) in (2, 3), "loader",
                  f"yields a batch of type {type(batch).__name__}"
                  + (f" with {len(batch)} items" if isinstance(batch, tuple | list) else ""),
                  "(x, y) or (index, x, y)")
            check(len(batch) == 3 or ordered is None, "loader", f"yields (x, y) batches from "
                  f"{ordered}, which shuffles or has no known order, so the examples' "
                  "positions are unknown", "batches (index, x, y), or (x, y) from a list or "
                  "a DataLoader with shuffle=False and no sampler")
            xb, yb = batch[-2], torch.as_tensor(batch[-1])
            _check_labels(yb, "loader")
            check(isinstance(xb, Tensor), "loader", f"inputs of type {type(xb).__name__}",
                  "x a (B, *shape) tensor")
            check(len(xb) == len(yb), "loader", f"a batch of {len(xb)} inputs and {len(yb)} "
                  "labels", "one label per input")
            if len(batch) == 3:
                idx = torch.as_tensor(batch[0]).flatten()
                bad = idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool
                check(not bad, "loader", f"index has dtype {idx.dtype}", "integer positions")
                check(len(idx) == len(yb), "loader", f"{len(idx)} indices for {len(yb)} "
                      "labels", "one index per example")
                indices.append(idx.to("cpu", torch.int64))
            parts.append(_input_features(model, xb, yb.long(), device, full_grad, "loader"))
    check(bool(parts), "loader", "yielded no batch")
    feats = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    seen = feats["loss"].numel()
    if not indices:
        check(n is None or seen == n, "loader", f"yielded {seen} examples for n={n}",
              "every example once, or batches (index, x, y)")
        return feats
    check(len(indices) == len(parts), "loader", "mixes (x, y) and (index, x, y) batches")
    index = torch.cat(indices)
    n = int(index.max()) + 1 if n is None else n
    check(int(index.min()) >= 0 and int(index.max()) < n, "loader",
          f"index outside [0, {n}): {int(index.min())}..{int(index.max())}")
    missing = torch.ones(n, dtype=torch.bool)
    missing[index] = False
    check(not bool(missing.any()), "loader", f"{int(missing.sum())} of {n} examples never "
          "yielded", "a loader over every example, without drop_last")
    out = {}
    for k, v in feats.items():
        out[k] = torch.empty(n, dtype=v.dtype)
        out[k][index] = v
    return out


def _check_model(model: nn.Module) -> None:
    check(isinstance(model, nn.Module), "model", f"is a {type(model).__name__}",
          "a torch.nn.Module")


def _input_features(model: nn.Module, x: Tensor, y: Tensor, device: str | torch.device,
                    full_grad: bool, field: str) -> dict[str, Tensor]:
    """:func:`_batch_features`, where torch's error from inside a model that cannot take
    ``x`` (of a dtype other than its parameters', or one value per example) is a one-line
    :class:`ConfigError` naming ``field``; other errors are raised as they are."""
    try:
        return _batch_features(model, x, y, device, full_grad)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as err:
        dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
        if len(dtypes) == 1 and x.dtype not in dtypes:
            (dtype,) = dtypes
            raise ConfigError(field, f"inputs of dtype {x.dtype} for a model with {dtype} "
                              f"parameters ({describe_error(err)})",
                              f"{dtype} inputs (x.to({dtype}); uint8 images scaled to [0, 1] "
                              "first, as sampletune's data loaders do)") from None
        if x.dim() < 2:
            raise ConfigError(field, f"a batch shaped {tuple(x.shape)}, one value per "
                              f"example ({describe_error(err)})",
                              "(B, *shape) inputs, one row per example") from None
        raise


def _batch_features(model: nn.Module, x: Tensor, y: Tensor, device: str | torch.device,
                    full_grad: bool) -> dict[str, Tensor]:
    """The features of one batch, ``{name: float64 (B,)}`` on the CPU."""
    names = MODEL_FEATURES if full_grad else MODEL_FEATURES[:3]
    out = batch_features(model, x.to(device), y.to(device), names)
    return {k: v.cpu() for k, v in out.items()}


def batch_features(model: nn.Module, x: Tensor, y: Tensor,
                   names: tuple[str, ...] = MODEL_FEATURES[:3]) -> dict[str, Tensor]:
    """The features ``names`` (of :data:`MODEL_FEATURES`) of one batch ``x`` ``(B, *shape)``,
    ``y`` ``(B,)`` in a single forward pass of ``model`` in eval mode (restored after):
    ``{name: float64 (B,)}`` on ``x``'s device. ``grad_norm_full`` costs a per-example
    backward pass per chunk; ``train_loss`` is a statistic of training, not of one model,
    and is refused."""
    unknown = [k for k in names if k not in MODEL_FEATURES]
    check(not unknown, "features", f"{unknown} cannot be computed from a model",
          ", ".join(MODEL_FEATURES))
    with eval_mode(model):
        layer = logit_layer(model) if "grad_norm" in names else None
        hidden, logits = _forward_with_hidden(model, layer, x) if layer is not None \
            else (None, model(x))
        if layer is None:
            _check_logits(logits, len(x))
        check(len(y) == len(logits), "y", f"{len(y)} labels for {len(logits)} inputs",
              "one label per input")
        top, classes = int(y.max()) if len(y) else 0, logits.shape[1]
        check(top < classes, "y", f"class id {top} for a model of {classes} classes",
              f"integers in [0, {classes - 1}]")
        out = {}
        if "loss" in names:
            out["loss"] = F.cross_entropy(logits.double(), y, reduction="none")
        if "renormed_entropy" in names:
            out["renormed_entropy"] = renormed_entropy(logits, y)
        if layer is not None:
            out["grad_norm"] = last_layer_grad_norm(hidden, logits, y, layer.bias is not None)
        if "grad_norm_full" in names:  # torch.func.grad ignores the outer no_grad
            out["grad_norm_full"] = full_grad_norm(model, x, y)
    return {k: out[k] for k in names}


class TrainLossTracker:
    """Observer of a training run: each example's mean training loss over its first epochs
    (the ``train_loss`` feature).

    The window is the first ``2 (b + 1)`` epochs, ``b`` being early stopping's best epoch
    (0-based): noisy labels are learnt after the best epoch and their training losses stay
    high until then. A run without validation (no best epoch) uses the first quarter of the
    schedule. An earlier version never went below that quarter; on data that memorise the
    noise within a few epochs (best epoch 0-3: splice, chess, breast cancer, spambase) the
    floor averaged over memorised epochs and cost up to 0.07 of AUROC against the noise mask
    (0.03 on average where it bound: ``benchmarks/results/loss_statistics.md``, round 8).
    The losses are the training steps' own (train mode, augmented inputs, before the
    update): no extra forward pass.

    Keeps four ``(n,)`` float64 vectors (running sums and draw counts, and their copies at
    the window's end) and is checkpointed with the run, so a resumed run gives the same
    values.
    """

    def __init__(self, n: int, epochs: int):
        check(n >= 1, "features", "the split is empty")
        check(epochs >= 1, "epochs", f"{epochs} must be positive", ">= 1")
        self.total = torch.zeros(n, dtype=torch.float64)
        self.count = torch.zeros(n, dtype=torch.float64)
        self.snap_total, self.snap_count = self.total.clone(), self.count.clone()
        self.end = math.ceil(epochs / 4) - 1  # last epoch of the window (no best epoch yet)
        self.snap_epoch = -1  # epoch of the snapshot (-1: none)

    def on_batch(self, report) -> None:
        idx = report.indices.cpu()
        self.total.index_add_(0, idx, report.losses.detach().to("cpu", torch.float64))
        self.count.index_add_(0, idx, torch.ones(len(idx), dtype=torch.float64))

    def on_epoch_end(self, record: dict, is_best: bool) -> None:
        epoch = int(record["epoch"])
        if is_best:
            self.end = 2 * epoch + 1  # always after ``epoch``
        if epoch == self.end:
            self.snap_total.copy_(self.total)
            self.snap_count.copy_(self.count)
            self.snap_epoch = epoch

    def mean(self) -> Tensor:
        """``(n,)`` mean training loss over the window (all epochs so far if the run ended
        before the window did). An example never drawn in it gets the mean over the drawn
        ones; NaN or infinite losses are a :class:`ConfigError`."""
        done = self.snap_epoch == self.end
        total, count = (self.snap_total, self.snap_count) if done else (self.total, self.count)
        check(bool(count.any()), "features", "no training step was observed")
        drawn = count > 0
        check(bool(torch.isfinite(total[drawn]).all()), "features",
              "non-finite training losses", "a training run that did not diverge")
        mean = torch.where(drawn, total / count.clamp_min(1.0), 0.0)
        return torch.where(drawn, mean, mean[drawn].mean())

    def state_dict(self) -> dict:
        return {"total": self.total, "count": self.count, "snap_total": self.snap_total,
                "snap_count": self.snap_count, "end": self.end, "snap_epoch": self.snap_epoch}

    def load_state_dict(self, state: dict) -> None:
        for k in ("total", "count", "snap_total", "snap_count"):
            check(state[k].shape == self.total.shape, "checkpoint",
                  f"its train-loss tracker has {state[k].numel()} examples, not "
                  f"{self.total.numel()}")
            getattr(self, k).copy_(state[k])
        self.end, self.snap_epoch = int(state["end"]), int(state["snap_epoch"])


def class_relative(values: Tensor, labels: Tensor, clean: Tensor) -> Tensor:
    """``(n,)`` float64 ``values[i] - m[labels[i]]``, where ``m[k]`` is the mean of the
    values of the examples labelled ``k`` weighted by ``clean`` (each example's probability
    of a clean label, in ``[0, 1]``): a value measured against the clean examples of its own
    class, as confident learning measures confidence against a per-class threshold
    (Northcutt et al., JAIR 2021, eq. 2). A class whose ``clean`` weights sum to 0 uses its
    plain mean. ``values``, ``clean``: ``(n,)``; ``labels``: ``(n,)`` int64."""
    v = values.detach().to("cpu", torch.float64)
    w = clean.detach().to("cpu", torch.float64)
    y = labels.detach().to("cpu", torch.int64)
    check(v.shape == w.shape == y.shape and v.dim() == 1, "features", f"values {tuple(v.shape)}"
          f", labels {tuple(y.shape)} and weights {tuple(w.shape)} differ in shape")
    k = int(y.max()) + 1 if len(y) else 0
    weighted = torch.zeros(k, dtype=torch.float64).index_add_(0, y, w * v)
    weight = torch.zeros(k, dtype=torch.float64).index_add_(0, y, w)
    total = torch.zeros(k, dtype=torch.float64).index_add_(0, y, v)
    count = torch.zeros(k, dtype=torch.float64).index_add_(0, y, torch.ones_like(v))
    mean = torch.where(weight > 0, weighted / weight.clamp_min(1e-300),
                       total / count.clamp_min(1.0))
    return v - mean[y]


def train_loss_features(train_loss: Tensor, labels: Tensor, seed: int = 0) -> dict[str, Tensor]:
    """``{"train_loss", "class_train_loss"}`` from a :class:`TrainLossTracker`'s ``(n,)``
    mean and the ``(n,)`` training labels: the clean weights of :func:`class_relative` are
    the posterior of the low-loss component of DivideMix's two-component mixture on
    ``train_loss`` (:func:`~sampletune.noisy.estimate.noisy_posterior`, seeded by
    ``seed``)."""
    from sampletune.noisy.estimate import noisy_posterior

    clean = 1.0 - noisy_posterior(train_loss, seed=seed)
    return {TRAIN_LOSS: train_loss.detach().to("cpu", torch.float64),
            CLASS_TRAIN_LOSS: class_relative(train_loss, labels, clean)}


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
                    y: Tensor, *, extra: dict[str, Tensor] | None = None,
                    full_grad: bool = False, progress: bool = True,
                    **kw) -> tuple[dict[str, Tensor], Path]:
    """Load ``root/<key>.npz`` if it exists (checked against ``len(y)`` and the features
    asked for; ``extra`` ones a file of an older version lacks are added to it), else compute
    the model's features (:func:`compute_features`), add ``extra`` ones (e.g.
    ``train_loss``) and save them together.

    In a distributed job (:mod:`sampletune.train.distributed`) rank 0 loads or computes
    and writes the file, and every rank gets rank 0's features (a collective: call it on
    every rank, with the same ``extra`` names)."""
    from sampletune.train.distributed import current_world

    path = Path(root) / key.filename()
    n = int(y.shape[0])
    names = sorted([*(MODEL_FEATURES if full_grad else MODEL_FEATURES[:3]), *(extra or {})])
    world = current_world()

    def load_or_compute() -> dict[str, Tensor]:
        if path.exists():
            feats = load_features(path, n=n, key=key)
            newer = [k for k in extra or {} if k not in feats]  # a file from an older version
            if newer and sorted([*feats, *newer]) == names:
                feats = {**feats, **{k: extra[k] for k in newer}}
                save_features(path, feats, key)
            check(sorted(feats) == names, "feature_file", f"{path} holds the features "
                  f"{sorted(feats)}, not {names}", "--restart to compute them again")
            return feats
        feats = {**compute_features(model, x, y, full_grad=full_grad, progress=progress,
                                    **kw), **(extra or {})}
        save_features(path, feats, key)
        return feats

    if not world.distributed:
        return load_or_compute(), path
    feats = world.agree(load_or_compute if world.rank == 0 else dict, world.device)
    return {k: world.broadcast(feats[k].to("cpu", torch.float64) if k in feats
                               else torch.empty(n, dtype=torch.float64)) for k in names}, path


def _rows(x: Tensor | Dataset, start: int, stop: int) -> Tensor:
    if isinstance(x, Tensor):
        return x[start:stop]
    return torch.stack([torch.as_tensor(x[i]) for i in range(start, stop)])


def _track(items, progress: bool, what: str):
    if not progress:
        return items
    from rich.progress import track

    return track(items, description=what, transient=True)
