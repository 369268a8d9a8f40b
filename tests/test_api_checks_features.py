"""Bad input to the feature functions is a one-line ConfigError, never a silent result."""

import pytest
import torch
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SubsetRandomSampler,
    TensorDataset,
)

from sampletune.errors import ConfigError
from sampletune.features import compute_features, features_from_loader
from sampletune.samplers import ShuffleSampler, WeightedSampler

N = 40


def _data():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(N, 5, generator=g), torch.randint(0, 3, (N,), generator=g)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    return model, x, y, TensorDataset(x, y)


class _Out(nn.Module):
    """A linear model whose output is ``how(logits)``."""

    def __init__(self, how, classes=3):
        super().__init__()
        self.lin, self.how = nn.Linear(5, classes), how

    def forward(self, x):
        return self.how(self.lin(x))


@pytest.mark.parametrize("make", [
    lambda ds: DataLoader(ds, batch_size=8, sampler=ShuffleSampler(N, seed=0)),
    lambda ds: DataLoader(ds, batch_size=8, sampler=SubsetRandomSampler(range(N))),
    lambda ds: DataLoader(ds, batch_sampler=BatchSampler(RandomSampler(ds), 8, False)),
    lambda ds: DataLoader(ds, batch_size=8, sampler=WeightedSampler(torch.ones(N), seed=0)),
    lambda ds: ((ds.tensors[0][i], ds.tensors[1][i]) for i in torch.randperm(N).split(8)),
], ids=["shuffle", "subset-random", "batch-sampler", "weighted", "generator"])
def test_unordered_xy_batches_are_refused(make):
    model, _, _, ds = _data()
    with pytest.raises(ConfigError, match=r"^loader: yields \(x, y\) batches from .*index"):
        features_from_loader(model, make(ds), n=N)


def test_ordered_xy_batches_still_match_compute_features():
    model, x, y, ds = _data()
    ref = compute_features(model, x, y, progress=False)
    ordered = BatchSampler(torch.utils.data.SequentialSampler(ds), 8, False)
    for got in (features_from_loader(model, DataLoader(ds, batch_size=8)),
                features_from_loader(model, DataLoader(ds, batch_sampler=ordered)),
                features_from_loader(model, tuple(zip(x.split(8), y.split(8), strict=True)))):
        assert all(torch.equal(got[k], ref[k]) for k in ref)


@pytest.mark.parametrize("call, match", [
    (lambda m, x, y: compute_features(m, torch.cat([x, x]), y), "^x: 80 inputs for 40"),
    (lambda m, x, y: compute_features(m, x, y + 3), "^y: class id 5 .* 3 classes"),
    (lambda m, x, y: compute_features(m, x, y - 1), "^y: negative class id -1"),
    (lambda m, x, y: compute_features(m, x, y.float()), "^y: labels of .*float32"),
    (lambda m, x, y: compute_features(m, x, y > 0), "^y: labels of .*bool"),
    (lambda m, x, y: compute_features(m, x, y[:, None]), r"^y: labels of shape \(40, 1\)"),
    (lambda m, x, y: compute_features(m, x, y.tolist()), "^y: is a list"),
    (lambda m, x, y: compute_features(m, x, y, batch_size=1.5), "^batch_size: 1.5 is not"),
    (lambda m, x, y: compute_features(m, x, y, full_grad="no"), "^full_grad: 'no' is not"),
    (lambda m, x, y: features_from_loader(m, [(x[:8], y[:7])], n=7), "^loader: a batch of 8"),
    (lambda m, x, y: features_from_loader(m, [({"x": x}, y)], n=N), "^loader: inputs of type"),
    (lambda m, x, y: features_from_loader(m, [(x, y)], n=40.7), "^n: 40.7 is not an integer"),
    (lambda m, x, y: features_from_loader(m, [(x, y)], n="40"), "^n: '40' is not an integer"),
    (lambda m, x, y: features_from_loader(m, [(x, y)], full_grad="no"), "^full_grad: 'no'"),
    (lambda m, x, y: features_from_loader(m, [(x, y > 0)]), "^loader: labels of .*bool"),
    (lambda m, x, y: features_from_loader(_Out(lambda z: (z, None)), [(x, y)]),
     "^model: returns a tuple"),
    (lambda m, x, y: features_from_loader(_Out(lambda z: z[:, 0]), [(x, y)]),
     r"^model: returns \(40,\)"),
    (lambda m, x, y: features_from_loader(_Out(lambda z: z * float("nan")), [(x, y)]),
     "^model: gives NaN or infinite logits"),
    (lambda m, x, y: features_from_loader(_Out(lambda z: z, classes=1), [(x, y * 0)]),
     "^model: gives 1 class"),
])
def test_bad_labels_models_and_arguments_are_one_line_errors(call, match):
    model, x, y, _ = _data()
    with pytest.raises(ConfigError, match=match) as err:
        call(model, x, y)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.uint8, torch.int64,
                                   torch.bool])
def test_inputs_of_another_dtype_than_the_model_are_refused_not_cast(dtype):
    """Was torch's "mat1 and mat2 must have the same dtype" from inside the model."""
    model, x, y, _ = _data()
    xd = (x.abs() * 50).to(dtype)
    match = rf"^{{}}: inputs of dtype {dtype} for a model with torch.float32 parameters"
    for field, call in (("x", lambda: compute_features(model, xd, y, progress=False)),
                        ("x", lambda: compute_features(model, xd, y, full_grad=True,
                                                       progress=False)),
                        ("loader", lambda: features_from_loader(model, [(xd, y)]))):
        with pytest.raises(ConfigError, match=match.format(field)) as err:
            call()
        assert "\n" not in str(err.value)


def test_a_float64_model_names_its_dtype():
    model, x, y, _ = _data()
    with pytest.raises(ConfigError, match="^x: inputs of dtype torch.float32 for a model "
                       "with torch.float64 parameters"):
        compute_features(model.double(), x, y, progress=False)


def test_one_value_per_example_is_refused():
    model, x, y, _ = _data()
    with pytest.raises(ConfigError, match=r"^x: a batch shaped \(16,\), one value"):
        compute_features(model, x[:, 0], y, batch_size=16, progress=False)
    with pytest.raises(ConfigError, match=r"^loader: a batch shaped \(40,\), one value"):
        features_from_loader(model, [(x[:, 0], y)])


def test_the_model_is_a_module():
    """A plain function was an AttributeError from eval_mode."""
    model, x, y, _ = _data()
    with pytest.raises(ConfigError, match="^model: is a function"):
        compute_features(lambda z: model(z), x, y, progress=False)
    with pytest.raises(ConfigError, match="^model: is a function"):
        features_from_loader(lambda z: model(z), [(x, y)])
