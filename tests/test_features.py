import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from sampletune.errors import ConfigError
from sampletune.features import (
    FeatureKey,
    cached_features,
    cdf_normalise,
    compute_features,
    features_from_loader,
    full_grad_norm,
    load_features,
    renormed_entropy,
    save_features,
)


def _mlp(d_in=5, classes=4, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(d_in, 8), nn.ReLU(), nn.Linear(8, classes))


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_cdf_is_fraction_at_or_below_with_shared_ties():
    v = torch.tensor([3.0, 1.0, 2.0, 2.0])
    assert cdf_normalise(v).tolist() == [1.0, 0.25, 0.75, 0.75]


def test_cdf_is_monotone_in_unit_interval_and_rejects_nan():
    v = torch.randn(200, generator=torch.Generator().manual_seed(0)).round(decimals=1)
    c = cdf_normalise(v)
    order = torch.argsort(v)
    assert bool((c[order].diff() >= 0).all()) and 0 < c.min() and c.max() == 1.0
    with pytest.raises(ConfigError, match="NaN"):
        cdf_normalise(torch.tensor([1.0, float("nan")]))


def test_renormed_entropy_matches_eq11_by_hand():
    logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    got = renormed_entropy(logits, y)
    for i in range(6):
        p = torch.softmax(logits[i].double(), 0)
        rest = torch.cat([p[: y[i]], p[y[i] + 1:]])
        q = rest / rest.sum()
        assert got[i].item() == pytest.approx(float(-(q * q.log()).sum()), abs=1e-10)


def test_renormed_entropy_extremes():
    # Target dominates and the rest are equal: renormed entropy is log(C - 1).
    logits = torch.tensor([[50.0, 0.0, 0.0, 0.0]])
    assert renormed_entropy(logits, torch.tensor([0])).item() == pytest.approx(math.log(3))
    # Two classes: the rest is one class, entropy 0.
    two = torch.randn(3, 2, generator=_gen())
    assert renormed_entropy(two, torch.tensor([0, 1, 0])).abs().max() < 1e-12


def test_last_layer_grad_norm_equals_autograd():
    model = _mlp()
    x, y = torch.randn(7, 5, generator=_gen()), torch.randint(0, 4, (7,), generator=_gen(1))
    feats = compute_features(model, x, y, batch_size=3, progress=False)
    last = model[2]
    for i in range(7):
        model.zero_grad()
        F.cross_entropy(model(x[i: i + 1]), y[i: i + 1]).backward()
        ref = torch.sqrt(last.weight.grad.pow(2).sum() + last.bias.grad.pow(2).sum())
        assert feats["grad_norm"][i].item() == pytest.approx(ref.item(), rel=1e-5)
        assert feats["loss"][i].item() == pytest.approx(
            F.cross_entropy(model(x[i: i + 1]), y[i: i + 1]).item(), rel=1e-5)


def test_full_grad_norm_equals_autograd():
    model = _mlp()
    x, y = torch.randn(4, 5, generator=_gen()), torch.randint(0, 4, (4,), generator=_gen(1))
    got = full_grad_norm(model, x, y)
    for i in range(4):
        model.zero_grad()
        F.cross_entropy(model(x[i: i + 1]), y[i: i + 1]).backward()
        ref = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
        assert got[i].item() == pytest.approx(ref.item(), rel=1e-5)


def test_compute_features_eval_mode_and_shapes():
    base = _mlp(classes=3)
    model = nn.Sequential(base[0], nn.Dropout(0.9), base[1], base[2])
    model.train()
    x, y = torch.randn(10, 5, generator=_gen()), torch.randint(0, 3, (10,), generator=_gen(1))
    a = compute_features(model, x, y, batch_size=4, full_grad=True, progress=False)
    b = compute_features(model, x, y, batch_size=10, progress=False)
    assert model.training  # restored
    assert set(a) == {"loss", "renormed_entropy", "grad_norm", "grad_norm_full"}
    assert all(v.shape == (10,) and v.dtype == torch.float64 for v in a.values())
    assert torch.allclose(a["loss"], b["loss"])  # dropout off: deterministic, batch-free
    # The full gradient includes the logit layer's, so it is never smaller.
    assert bool((a["grad_norm_full"] >= a["grad_norm"] - 1e-9).all())


def test_logit_layer_must_produce_the_logits():
    model = nn.Sequential(_mlp()[0], nn.Tanh())
    with pytest.raises(ConfigError, match="full_grad"):
        compute_features(model, torch.randn(2, 5, generator=_gen()), torch.tensor([0, 1]),
                         progress=False)


def test_save_load_checks_size_and_key(tmp_path):
    key = FeatureKey("tiny-sym0.3", "train", 0, "mlp")
    feats = {"loss": torch.rand(6, generator=_gen()), "grad_norm": torch.rand(6, generator=_gen(1))}
    path = save_features(tmp_path / key.filename(), feats, key)
    assert torch.equal(load_features(path, n=6, key=key)["loss"], feats["loss"].double())
    with pytest.raises(ConfigError, match="holds 6 examples"):
        load_features(path, n=7)
    with pytest.raises(ConfigError, match="computed for"):
        load_features(path, key=FeatureKey("tiny-sym0.3", "train", 1, "mlp"))


def test_cached_features_computes_once(tmp_path):
    model = _mlp()
    x, y = torch.randn(9, 5, generator=_gen()), torch.randint(0, 4, (9,), generator=_gen(1))
    key = FeatureKey("d", "train", 0, "mlp")
    first, path = cached_features(tmp_path, key, model, x, y, progress=False)
    with torch.no_grad():
        model[2].weight.mul_(0)  # a recompute would now give other values
    second, path2 = cached_features(tmp_path, key, model, x, y, progress=False)
    assert path == path2 and torch.equal(first["loss"], second["loss"])
    with pytest.raises(ConfigError, match="training set has 8"):
        cached_features(tmp_path, key, model, x[:8], y[:8], progress=False)
    # extra features a file of an older version lacks are added to it, the rest kept
    third, _ = cached_features(tmp_path, key, model, x, y, extra={"train_loss": y.double()},
                               progress=False)
    assert torch.equal(third["loss"], first["loss"]) and torch.equal(third["train_loss"],
                                                                     y.double())
    assert torch.equal(load_features(path)["train_loss"], y.double())
    # a cached file without a model feature asked for (or with others) is refused in one line
    with pytest.raises(ConfigError, match=r"^feature_file: .* holds the features \['grad_norm', "
                       r"'loss', 'renormed_entropy', 'train_loss'\], not \['grad_norm', "
                       r"'grad_norm_full', 'loss', 'renormed_entropy', 'train_loss'\] "
                       r".allowed: --restart"):
        cached_features(tmp_path, key, model, x, y, extra={"train_loss": y.double()},
                        full_grad=True, progress=False)
    with pytest.raises(ConfigError, match=r"^feature_file: .* holds the features"):
        cached_features(tmp_path, key, model, x, y, progress=False)  # one more than asked


def test_train_loss_tracker_averages_up_to_twice_the_best_epoch():
    from sampletune.features import TrainLossTracker
    from sampletune.train import BatchReport

    tracker = TrainLossTracker(3, epochs=8)
    val = [0.5, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]  # best epoch 1: window = epochs 0..3
    for epoch in range(8):
        # example 2 is never drawn; example 0's loss grows by 1 per epoch
        report = BatchReport(epoch, epoch, torch.tensor([0, 1]),
                             torch.tensor([float(epoch), 2.0]), torch.zeros(2))
        tracker.on_batch(report)
        tracker.on_epoch_end({"epoch": epoch, "val_acc": val[epoch]}, is_best=epoch in (0, 1))
        if epoch == 2:  # a resumed run continues from the saved state
            state = {k: v.clone() if torch.is_tensor(v) else v
                     for k, v in tracker.state_dict().items()}
            tracker = TrainLossTracker(3, epochs=8)
            tracker.load_state_dict(state)
    mean = tracker.mean()
    assert mean[:2].tolist() == pytest.approx([1.5, 2.0])  # (0 + 1 + 2 + 3) / 4, 2
    assert float(mean[2]) == pytest.approx(1.75)  # never drawn: the mean of the drawn ones
    with pytest.raises(ConfigError, match="^checkpoint: "):
        TrainLossTracker(4, epochs=8).load_state_dict(tracker.state_dict())
    bad = TrainLossTracker(1, epochs=1)
    bad.on_batch(BatchReport(0, 0, torch.tensor([0]), torch.tensor([float("nan")]),
                             torch.zeros(1)))
    with pytest.raises(ConfigError, match="^features: non-finite"):
        bad.mean()


@pytest.mark.parametrize("best, window", [(0, 2), (3, 8), (None, 10)])
def test_the_train_loss_window_is_twice_the_best_epoch_even_when_that_is_early(best, window):
    """40 epochs, example 0's training loss = the epoch: a best epoch of 0 averages epochs
    0..1 (an earlier floor of a quarter of the schedule averaged 0..9, memorised epochs on
    data that memorise fast); without validation the window is the first quarter."""
    from sampletune.features import TrainLossTracker
    from sampletune.train import BatchReport

    tracker = TrainLossTracker(1, epochs=40)
    for epoch in range(40):
        tracker.on_batch(BatchReport(epoch, epoch, torch.tensor([0]), torch.tensor([float(epoch)]),
                                     torch.zeros(1)))
        record = {"epoch": epoch} if best is None else {"epoch": epoch, "val_acc": 0.5}
        tracker.on_epoch_end(record, is_best=epoch == best)
    assert float(tracker.mean()[0]) == pytest.approx((window - 1) / 2)


def test_class_relative_subtracts_the_clean_weighted_mean_of_each_labelled_class():
    from sampletune.features import class_relative

    values = torch.tensor([1.0, 2.0, 10.0, 5.0, 6.0, 20.0, 7.0, 9.0])
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
    clean = torch.tensor([1.0, 1.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0])  # class 2: no clean weight
    out = class_relative(values, labels, clean)
    assert out.dtype == torch.float64
    assert out.tolist() == pytest.approx([-0.5, 0.5, 8.5, -0.5, 0.5, 14.5, -1.0, 1.0])
    with pytest.raises(ConfigError, match="^features: "):
        class_relative(values, labels[:-1], clean)


def test_a_cut_on_class_train_loss_keeps_a_hard_class_clean_examples():
    """Class 1's clean losses sit 2 nats above class 0's, as high as class 0's noisy ones:
    "drop the top 30%" on ``train_loss`` drops hard clean examples and keeps noisy ones; on
    ``class_train_loss`` (clean weights from the two-component mixture) it drops exactly the
    noisy labels."""
    from sampletune.features import train_loss_features

    g = _gen()
    n = 400
    labels = torch.arange(n) % 2
    noisy = torch.rand(n, generator=g) < 0.3
    train_loss = 2.0 * labels + torch.rand(n, generator=g, dtype=torch.float64) + 2.5 * noisy
    feats = train_loss_features(train_loss, labels, seed=0)
    assert torch.equal(feats["train_loss"], train_loss)
    top = int(noisy.sum())
    for name, clean_dropped in (("train_loss", 23), ("class_train_loss", 0)):
        dropped = torch.zeros(n, dtype=torch.bool)
        dropped[feats[name].argsort(descending=True)[:top]] = True
        assert int((dropped & ~noisy).sum()) == clean_dropped, name
        assert int((dropped & ~noisy & (labels == 0)).sum()) == 0, name


def _loader_data(n=23):
    x, y = torch.randn(n, 5, generator=_gen()), torch.randint(0, 4, (n,), generator=_gen(1))
    return x, y, TensorDataset(x, y), TensorDataset(torch.arange(n), x, y)


def test_features_from_loader_equal_compute_features_in_any_order():
    model = _mlp()
    x, y, plain, indexed = _loader_data()
    ref = compute_features(model, x, y, progress=False)
    in_order = features_from_loader(model, DataLoader(plain, batch_size=5))
    shuffled = features_from_loader(
        model, DataLoader(indexed, batch_size=4, shuffle=True, generator=_gen(2)))
    lists = features_from_loader(model, [(x[:10], y[:10]), (x[10:], y[10:])], n=23)
    for got in (in_order, shuffled, lists):
        assert set(got) == {"loss", "renormed_entropy", "grad_norm"}
        for k in ref:
            assert got[k].shape == (23,) and got[k].dtype == torch.float64
            assert torch.allclose(got[k], ref[k])


@pytest.mark.parametrize("make, match", [
    (lambda p, i: DataLoader(p, batch_size=4, shuffle=True), "shuffles"),
    (lambda p, i: DataLoader(i, batch_size=4, drop_last=True), "3 of 23 examples never"),
    (lambda p, i: DataLoader(p, batch_size=4, drop_last=True), "yielded 20 examples for n=23"),
    (lambda p, i: [torch.zeros(4, 5)], "type Tensor"),
    (lambda p, i: [(torch.zeros(4, 5), torch.zeros(4))], "dtype torch.float32"),
    (lambda p, i: [(torch.tensor([0, 1]), torch.zeros(3, 5), torch.zeros(3).long())],
     "2 indices for 3 labels"),
    (lambda p, i: [], "yielded no batch"),
])
def test_features_from_loader_refuses_what_it_cannot_place(make, match):
    _, _, plain, indexed = _loader_data()
    with pytest.raises(ConfigError, match=f"^loader: .*{match}"):
        features_from_loader(_mlp(), make(plain, indexed))
