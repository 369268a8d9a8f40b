"""Deterministic train / validation / test splits, label noise and normalisation."""

from __future__ import annotations

import torch
from torch import Tensor

from sampletune.data.dataset import DataSplits, RawDataset, Split
from sampletune.data.noise import apply_noise
from sampletune.errors import check, check_flag
from sampletune.seeding import check_seed


def make_splits(
    raw: RawDataset,
    *,
    seed: int,
    val_fraction: float = 0.1,
    noise: float = 0.0,
    noise_type: str = "symmetric",
    train_subset: int | None = None,
    val_noise: bool = False,
    normalize: bool = True,
) -> DataSplits:
    """Carve a validation split from training, add label noise to training, normalise.

    The validation split is a stratified-free uniform random ``val_fraction`` of the
    source's training set (drawn with ``seed``) and keeps *clean* labels: it is what
    searches score on. The test split is the source's test set, used only for reporting.
    Noise is applied to the remaining training examples only.

    Every split must hold at least ``num_classes`` examples (one per class on average):
    a smaller validation split cannot score a sampler, a smaller training split cannot
    learn every class, a smaller test split reports nothing. Too small a data set, subset
    or ``val_fraction`` is a :class:`ConfigError` naming the field to change.

    Args:
        val_noise: give the validation split the same kind and rate of label noise (drawn
            after the training split's, which stays the same): what a user whose held-out
            labels are as noisy as the rest would see. Its clean labels and mask are kept.
        train_subset: keep only this many training examples (before the validation carve),
            a random subset drawn with ``seed``: for quick experiments on CPU. At most the
            size of the source's training set.
    """
    check_seed(seed)  # a float such as 1.5 is refused, not truncated to 1
    check_flag(val_noise, "val_noise")
    check_flag(normalize, "normalize")
    check(0.0 < val_fraction < 1.0, "val_fraction", f"{val_fraction} is outside (0, 1)",
          "0 < val_fraction < 1")
    n, k = len(raw.y_train), raw.num_classes
    if train_subset is not None:
        check(2 <= train_subset <= n, "train_subset", f"{train_subset} is outside [2, {n}]: "
              f"{raw.name} has {n} training examples", f"2..{n}")
    gen = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(n, generator=gen)
    if train_subset is not None:
        order = order[:train_subset]
    n_val = round(val_fraction * len(order))
    n_train = len(order) - n_val
    field = "train_subset" if train_subset is not None else "dataset"
    check(len(order) >= 2 * k, field, f"{len(order)} training examples of {raw.name} cannot "
          f"hold a training and a validation split for {k} classes",
          f">= {2 * k} (num_classes per split)")
    check(n_val >= k, "val_fraction", f"{val_fraction:g} leaves {n_val} validation examples "
          f"of {len(order)} for {k} classes", f">= {k / len(order):.3g} here (at least "
          "one validation example per class)")
    check(n_train >= k, "val_fraction", f"{val_fraction:g} leaves {n_train} training "
          f"examples of {len(order)} for {k} classes", f"<= {1 - k / len(order):.3g} here")
    check(len(raw.y_test) >= k, "dataset", f"the test split of {raw.name} holds "
          f"{len(raw.y_test)} examples for {k} classes", f">= {k} test examples")
    val_idx, train_idx = order[:n_val].sort().values, order[n_val:].sort().values

    train = _split(raw.x_train, raw.y_train, train_idx)
    val = _split(raw.x_train, raw.y_train, val_idx)
    carved = torch.nonzero((torch.bincount(raw.y_train[order].long(), minlength=k) > 0)
                           & (torch.bincount(train.clean_y, minlength=k) == 0)).flatten()
    check(len(carved) == 0, "val_fraction", f"the validation carve takes every training "
          f"example of class {int(carved[0]) if len(carved) else 0}", "more examples of "
          "that class, or another --seed or --val-fraction (each class needs one to train on)")
    test = _split(raw.x_test, raw.y_test, torch.arange(len(raw.y_test)))

    if noise > 0:
        noisy_y = apply_noise(train.clean_y, noise_type, noise, raw.num_classes, gen)
        train = Split(train.x, noisy_y, train.clean_y, noisy_y != train.clean_y)
        kept = torch.bincount(train.clean_y[~train.noisy], minlength=k)
        present = torch.bincount(train.clean_y, minlength=k)
        lost = torch.nonzero((kept == 0) & (present > 0)).flatten().tolist()
        check(not lost, "noise", f"{noise:g} relabels every training example of class "
              f"{lost[0] if lost else 0} ({int(present[lost[0]]) if lost else 0} examples)",
              "a lower noise rate, or more training examples per class")
    else:
        apply_noise(train.clean_y, noise_type, noise, raw.num_classes, gen)  # validates
    if val_noise and noise > 0:
        noisy_y = apply_noise(val.clean_y, noise_type, noise, raw.num_classes, gen)
        val = Split(val.x, noisy_y, val.clean_y, noisy_y != val.clean_y)

    mean = std = None
    if normalize and train.in_memory:
        mean, std = _channel_stats(train.x)
        train, val, test = (_normalised(s, mean, std) for s in (train, val, test))

    return DataSplits(
        name=raw.name, train=train, val=val, test=test, num_classes=raw.num_classes,
        kind=raw.kind, hflip=raw.hflip, input_shape=raw.input_shape, mean=mean, std=std,
    )


def _split(x, y: Tensor, index: Tensor) -> Split:
    y = y[index].long()
    x = x[index] if isinstance(x, Tensor) else torch.utils.data.Subset(x, index.tolist())
    return Split(x, y, y.clone(), torch.zeros_like(y, dtype=torch.bool))


def _channel_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and std of each channel of images ``(N, C, H, W)`` and sequences ``(N, C, L)``
    (over all but dim 1), of each feature (column) of a table ``(N, D)``: features on their
    own scales (a count next to a ratio) each get unit variance, as a standard scaler gives
    them. A constant channel or feature keeps std 1 (centred only)."""
    dims = [d for d in range(x.dim()) if d != 1] if x.dim() > 2 else [0]
    mean = x.float().mean(dim=dims, keepdim=True)[0]
    std = x.float().std(dim=dims, keepdim=True)[0]
    return mean, torch.where(std > 1e-6, std, torch.ones_like(std))


def _normalised(split: Split, mean: Tensor, std: Tensor) -> Split:
    return Split((split.x.float() - mean) / std, split.y, split.clean_y, split.noisy)
