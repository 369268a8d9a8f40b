"""Crop-level sampling (swift-sampler.txt section 4.2): the selector, the Swift scorer for new
points, and the ``--crop-sampling`` option."""

import pytest
import torch
from torch import nn

from sampletune.augment import CropFlip
from sampletune.cli import main
from sampletune.errors import ConfigError
from sampletune.experiments.config import RunConfig
from sampletune.features import EmpiricalCdf, FeatureKey, compute_features, save_features
from sampletune.io import save_torch
from sampletune.selection import CropSampling
from sampletune.swift.crops import crop_sampling
from sampletune.swift.family import CumulativeGradient, SwiftFamily
from sampletune.swift.params import SwiftParams
from sampletune.swift.reference import drop_top_loss_params
from sampletune.swift.sampler_file import SamplerSpec, save_sampler
from sampletune.train import seeded_model


def _model(shape=(1, 4, 4), classes=3, seed=0):
    d = shape[0] * shape[1] * shape[2]
    return seeded_model(lambda: nn.Sequential(nn.Flatten(), nn.Linear(d, 16), nn.ReLU(),
                                              nn.Linear(16, classes)), seed)


def _selector(weights, seed=0, model=None):
    return CropSampling(model or _model(), weights, ("loss",), CropFlip(2, hflip=True),
                        seed=seed)


def _batch(tiny_data, b=32, start=0):
    idx = torch.arange(start, start + b)
    return idx, tiny_data.train.x[idx], tiny_data.train.y[idx]


def test_same_seed_epoch_and_step_keep_the_same_crops(tiny_data):
    idx, x, y = _batch(tiny_data)
    a, b, c = (_selector(lambda f: torch.ones_like(f["loss"]), seed=s) for s in (0, 0, 1))
    for sel in (a, b, c):
        sel.set_epoch(3)
    first, again, other = (s.select(None, idx, x, y) for s in (a, b, c))
    for u, v in zip(first, again, strict=True):
        assert torch.equal(u, v)
    assert not torch.equal(first[1], other[1])
    second = a.select(None, idx, x, y)  # the next step draws other crops
    assert not torch.equal(first[1], second[1])
    a.set_epoch(3)  # a new epoch (or a resumed one) starts again at step 0
    assert torch.equal(a.select(None, idx, x, y)[1], first[1])


def test_keeps_b_of_2b_crops_each_of_its_own_image(tiny_data):
    idx, x, y = _batch(tiny_data, b=24, start=10)
    sel = _selector(lambda f: torch.ones_like(f["loss"]))
    kept_idx, crops, labels = sel.select(None, idx, x, y)
    assert kept_idx.shape == (24,) and crops.shape == (24, 1, 4, 4) and labels.shape == (24,)
    assert sel.candidates == 48 and sel.kept == 24
    assert torch.equal(labels, tiny_data.train.y[kept_idx])
    # each kept crop is a crop of its own image: the image's pixels, shifted and zero-padded
    for i, crop in zip(kept_idx.tolist(), crops, strict=True):
        img = tiny_data.train.x[i, 0]
        shifts = [torch.equal(_shift(img, dy, dx, flip), crop[0]) for dy in range(-2, 3)
                  for dx in range(-2, 3) for flip in (False, True)]
        assert any(shifts)


def _shift(img, dy, dx, flip):
    out = torch.zeros_like(img)
    h, w = img.shape
    ys, xs = slice(max(0, dy), h + min(0, dy)), slice(max(0, dx), w + min(0, dx))
    yd, xd = slice(max(0, -dy), h + min(0, -dy)), slice(max(0, -dx), w + min(0, -dx))
    out[yd, xd] = img[ys, xs]
    return out.flip(-1) if flip else out


def test_zero_weight_crops_are_never_kept(tiny_data):
    idx, x, y = _batch(tiny_data)
    seen = {}

    def below_median(f):  # positive for fewer than half of the 64 crops
        seen["loss"] = f["loss"]
        return (f["loss"] < f["loss"].median()).double()

    kept_idx, crops, _ = _selector(below_median).select(None, idx, x, y)
    positive = seen["loss"] < seen["loss"].median()
    assert 0 < len(kept_idx) == int(positive.sum()) < 32
    nothing = _selector(lambda f: torch.zeros_like(f["loss"]))
    assert nothing.select(None, idx, x, y) is None  # nothing to train on: the batch is skipped


def test_weights_on_low_loss_keep_lower_loss_crops_than_uniform(tiny_data):
    """A sampler that favours low-loss crops must keep crops of lower loss (under the frozen
    model) than uniform weights do, on the same candidate crops."""
    from sampletune.samplers import ShuffleSampler
    from sampletune.train import TrainConfig, train

    frozen = train(_model(), tiny_data, ShuffleSampler(len(tiny_data.train), seed=0),
                   TrainConfig(epochs=5, lr=0.1, batch_size=32), progress=False).model
    idx, x, y = _batch(tiny_data, b=128)
    kept = {}
    for name, weights in (("low", lambda f: torch.exp(-10.0 * f["loss"])),
                          ("uniform", lambda f: torch.ones_like(f["loss"]))):
        sel = _selector(weights, model=frozen)
        picks = [sel.select(None, idx, x, y) for _ in range(5)]  # 5 steps of 2 x 128 crops
        kept[name] = torch.cat([compute_features(frozen, c, lab, progress=False)["loss"]
                                for _, c, lab in picks]).mean()
    assert kept["low"] < 0.85 * kept["uniform"]  # 0.87 against 1.14 when written


def test_crop_weights_must_be_one_finite_non_negative_per_crop(tiny_data):
    idx, x, y = _batch(tiny_data)
    for bad in (lambda f: -torch.ones_like(f["loss"]), lambda f: torch.ones(3),
                lambda f: torch.full_like(f["loss"], float("nan"))):
        with pytest.raises(ConfigError, match="^weights: crop weights must be finite"):
            _selector(bad).select(None, idx, x, y)


def test_empirical_cdf_of_a_reference_and_cgf_at_new_points():
    cdf = EmpiricalCdf(torch.tensor([3.0, 1.0, 2.0, 2.0]))
    assert cdf(torch.tensor([0.5, 1.0, 2.0, 2.5, 9.0])).tolist() == [0.0, 0.25, 0.75, 0.75, 1.0]
    cgf = CumulativeGradient(torch.tensor([0.1, 0.5, 0.9]), torch.tensor([1.0, 2.0, 1.0]))
    assert cgf(torch.tensor([0.0, 0.1, 0.6, 1.0])).tolist() == [0.0, 0.25, 0.75, 1.0]


@pytest.mark.parametrize("transform", ["cdf", "cgf"])
def test_scorer_on_the_training_features_is_tau(tiny_data, transform):
    feats = compute_features(_model(), tiny_data.train.x, tiny_data.train.y, progress=False)
    family = SwiftFamily(feats, transform=transform)
    params = SwiftParams((0.0, 0.3, 0.6, 1.0), (0.2, 1.0, 0.5, 0.0), (0.7, -0.4))
    assert torch.equal(family.scorer(params)(feats), family.tau(params))
    # new points: below and above every training example's features
    lo = {k: v.min().expand(2) - 1 for k, v in feats.items()}
    hi = {k: v.max().expand(2) + 1 for k, v in feats.items()}
    assert family.scorer(params)(lo).shape == (2,)
    assert torch.equal(family.scorer(params)(hi), family.scorer(params)(
        {k: v.max().expand(2) for k, v in feats.items()}))


def test_config_refuses_crop_sampling_without_swift_or_crops():
    with pytest.raises(ConfigError, match="^crop_sampling: needs --sampler swift .* not "
                                          "'uniform'"):
        RunConfig(crop_sampling=True, augment="standard")
    with pytest.raises(ConfigError, match="^crop_sampling: needs --sampler swift .* not 'p-sgd'"):
        RunConfig(crop_sampling=True, method="p-sgd", augment="standard")
    with pytest.raises(ConfigError, match="^crop_sampling: needs --augment standard .* not "
                                          "'none'"):
        RunConfig(crop_sampling=True, sampler="swift", weights="s.json")


def _sampler_file(tmp_path, data, *, with_model=True, arch="mlp"):
    """A Swift sampler file of ``data`` ("drop the top 40% by loss") with its feature model."""
    from sampletune.models import build_model

    model = seeded_model(lambda: build_model("mlp", data.input_shape, data.num_classes), 0)
    feats = compute_features(model, data.train.x, data.train.y, progress=False)
    feat = save_features(tmp_path / "f.npz", feats, FeatureKey("d", "train", 0, "mlp"))
    save_torch(tmp_path / "f.model.pt", model.state_dict())
    family = SwiftFamily(feats)
    spec = SamplerSpec(drop_top_loss_params(family, 0.4, 4), family.names, family.transform,
                       str(feat), len(data.train), split=data.train.fingerprint(),
                       feature_model=str(tmp_path / "f.model.pt") if with_model else "",
                       feature_arch=arch if with_model else "")
    return save_sampler(tmp_path / "sampler.json", spec)


def test_crop_sampling_needs_image_data_and_a_feature_model(tmp_path):
    from sampletune.experiments.setup import load_data

    seq = load_data(RunConfig(dataset="mnist1d", train_subset=300, device="cpu"))
    with pytest.raises(ConfigError, match="^crop_sampling: needs image data .* 'mnist1d' is "
                                          "sequence data"):
        crop_sampling(seq, None, seed=0)
    data = load_data(RunConfig(dataset="digits", train_subset=300, device="cpu"))
    (tmp_path / "a").mkdir()
    path = _sampler_file(tmp_path / "a", data, with_model=False)
    with pytest.raises(ConfigError, match="^weights: .* names no feature model"):
        crop_sampling(data, path, seed=0)
    (tmp_path / "b").mkdir()
    path = _sampler_file(tmp_path / "b", data, arch="smallcnn")
    with pytest.raises(ConfigError, match="^weights: .* does not fit a 'smallcnn'"):
        crop_sampling(data, path, seed=0)


def test_cli_train_with_crop_sampling_is_deterministic(tmp_path, capsys):
    import re

    from sampletune.experiments.setup import load_data

    flags = ["--dataset", "digits", "--train-subset", "300", "--model", "mlp"]
    data = load_data(RunConfig.from_dict({"dataset": "digits", "train_subset": 300}))
    path = _sampler_file(tmp_path, data)
    # the sampler drops the top 40% of the training set by loss: roughly half of the
    # candidate crops (a little harder than whole images) have weight 0
    sel = crop_sampling(data, path, seed=0)
    idx = torch.arange(64)
    kept = sel.select(None, idx, data.train.x[idx], data.train.y[idx])
    assert 20 <= len(kept[0]) <= 64
    args = ["train", *flags, "--sampler", "swift", "--weights", str(path), "--crop-sampling",
            "--augment", "standard", "--epochs", "2", "--batch-size", "32", "--quiet",
            "--device", "cpu"]
    accuracies = []
    for out in ("run", "again"):
        assert main([*args, "--out", str(tmp_path / out)]) == 0
        accuracies.append(re.search(r"val acc \S+, test acc \S+", capsys.readouterr().out)[0])
    assert accuracies[0] == accuracies[1]
    assert main(["train", *flags, "--crop-sampling", "--augment", "standard"]) == 2
    assert capsys.readouterr().err.startswith("sampletune: error: crop_sampling: needs "
                                              "--sampler swift")
