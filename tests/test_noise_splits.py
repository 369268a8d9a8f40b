import pytest
import torch

from sampletune.data import RawDataset, make_splits
from sampletune.data.noise import apply_noise, pairflip_noise, symmetric_noise
from sampletune.errors import ConfigError


def _labels(counts):
    return torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.4, 0.55])
def test_symmetric_noise_exact_counts_per_class(rate):
    y = _labels([50, 37, 101, 12])
    noisy = symmetric_noise(y, rate, 4, torch.Generator().manual_seed(1))
    for c, n in enumerate([50, 37, 101, 12]):
        flipped = ((y == c) & (noisy != y)).sum().item()
        assert flipped == round(rate * n)
    assert noisy.min() >= 0 and noisy.max() < 4


def test_symmetric_noise_targets_cover_other_classes_uniformly():
    y = torch.zeros(30000, dtype=torch.long)
    noisy = symmetric_noise(y, 0.9, 4, torch.Generator().manual_seed(0))
    counts = torch.bincount(noisy, minlength=4)
    assert counts[0] == 3000  # exactly the untouched 10%
    share = counts[1:].float() / counts[1:].sum()
    assert torch.allclose(share, torch.full((3,), 1 / 3), atol=0.02)


def test_pairflip_noise_goes_to_next_class():
    y = _labels([20, 20, 20])
    noisy = pairflip_noise(y, 0.25, 3, torch.Generator().manual_seed(0))
    changed = noisy != y
    assert changed.sum() == 15
    assert torch.equal(noisy[changed], (y[changed] + 1) % 3)


def test_noise_is_deterministic_by_seed():
    y = _labels([40, 40, 40])
    a = symmetric_noise(y, 0.4, 3, torch.Generator().manual_seed(5))
    b = symmetric_noise(y, 0.4, 3, torch.Generator().manual_seed(5))
    c = symmetric_noise(y, 0.4, 3, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_noise_rate_outside_range_is_a_config_error(rate):
    with pytest.raises(ConfigError, match="^noise: "):
        apply_noise(_labels([5, 5]), "symmetric", rate, 2, torch.Generator())


def test_unknown_noise_type_names_the_field():
    with pytest.raises(ConfigError, match="^noise_type: .*allowed: symmetric, pairflip"):
        apply_noise(_labels([5, 5]), "bogus", 0.1, 2, torch.Generator())


def _raw(n=200, n_test=50):
    g = torch.Generator().manual_seed(0)
    return RawDataset("r", torch.rand(n, 1, 4, 4, generator=g), torch.arange(n) % 4,
                      torch.rand(n_test, 1, 4, 4, generator=g), torch.arange(n_test) % 4,
                      num_classes=4)


def test_splits_are_deterministic_disjoint_and_complete():
    raw = _raw()
    a = make_splits(raw, seed=3, val_fraction=0.2, noise=0.4, normalize=False)
    b = make_splits(raw, seed=3, val_fraction=0.2, noise=0.4, normalize=False)
    c = make_splits(raw, seed=4, val_fraction=0.2, noise=0.4, normalize=False)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.train.y, b.train.y)
    assert not torch.equal(a.val.x, c.val.x)
    assert len(a.train) == 160 and len(a.val) == 40 and len(a.test) == 50
    rows = {tuple(r.flatten().tolist()) for r in torch.cat([a.train.x, a.val.x])}
    assert len(rows) == 200  # every source example once, no overlap


def test_noise_only_on_train_and_mask_matches():
    s = make_splits(_raw(), seed=0, val_fraction=0.2, noise=0.4)
    assert torch.equal(s.train.noisy, s.train.y != s.train.clean_y)
    assert s.train.noisy.any()
    assert not s.val.noisy.any() and not s.test.noisy.any()
    assert torch.equal(s.val.y, s.val.clean_y)


def test_normalisation_uses_train_statistics():
    s = make_splits(_raw(), seed=0)
    assert abs(s.train.x.mean().item()) < 1e-5
    assert abs(s.train.x.std().item() - 1) < 1e-3
    assert s.mean is not None and s.mean.shape == (1, 1, 1)


def test_a_table_is_standardised_feature_by_feature():
    # A count in the thousands next to a ratio below 1 and a constant column.
    gen = torch.Generator().manual_seed(0)
    x = torch.stack([1000 + 500 * torch.rand(300, generator=gen),
                     0.01 * torch.rand(300, generator=gen), torch.full((300,), 7.0)], 1)
    y = torch.arange(300) % 3
    raw = RawDataset("table", x[:240], y[:240], x[240:], y[240:], 3, kind="vector")
    s = make_splits(raw, seed=0)
    assert s.mean.shape == (3,) and s.std[2] == 1.0
    assert torch.allclose(s.train.x.mean(0), torch.zeros(3), atol=1e-4)
    assert torch.allclose(s.train.x.std(0), torch.tensor([1.0, 1.0, 0.0]), atol=1e-4)
    assert torch.equal(s.test.x[:, 2], torch.zeros(60))  # centred, not divided by ~0


def test_train_subset():
    s = make_splits(_raw(), seed=0, val_fraction=0.1, train_subset=50)
    assert len(s.train) + len(s.val) == 50


def test_val_noise_noises_validation_and_keeps_the_training_draw():
    clean_val = make_splits(_raw(), seed=0, val_fraction=0.2, noise=0.4)
    noisy_val = make_splits(_raw(), seed=0, val_fraction=0.2, noise=0.4, val_noise=True)
    assert torch.equal(clean_val.train.y, noisy_val.train.y)  # same training labels
    assert torch.equal(noisy_val.val.noisy, noisy_val.val.y != noisy_val.val.clean_y)
    counts = torch.bincount(noisy_val.val.clean_y, minlength=4).tolist()
    assert int(noisy_val.val.noisy.sum()) == sum(round(0.4 * c) for c in counts)  # per class
    assert torch.equal(noisy_val.val.clean_y, clean_val.val.y)
    assert not noisy_val.test.noisy.any()


def test_a_class_the_validation_carve_empties_is_refused():
    """A class with one example that lands in validation would train on no example of it."""
    y = torch.cat([torch.arange(40) % 3, torch.tensor([3])])
    x = torch.rand(len(y), 2, generator=torch.Generator().manual_seed(0))
    raw = RawDataset("rare", x, y, x[:8], torch.arange(8) % 4, 4, kind="vector")
    outcomes = set()
    for seed in range(12):
        try:
            splits = make_splits(raw, val_fraction=0.3, seed=seed)
            outcomes.add("trains")
            assert 3 in splits.train.y.tolist()
        except ConfigError as err:
            outcomes.add("refused")
            assert str(err).startswith("val_fraction: the validation carve takes every "
                                       "training example of class 3")
    assert outcomes == {"trains", "refused"}
