"""A Swift sampler applied to another architecture (swift-sampler.txt Table 2, SS(R18)):
with the target's own pre-trained features, or the search's as saved."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from sampletune.cli import main
from sampletune.errors import ConfigError
from sampletune.experiments import RunConfig, run_train
from sampletune.experiments.setup import load_data, new_model
from sampletune.experiments.swift_transfer import feature_source, target_probabilities
from sampletune.features import (
    FeatureKey,
    TrainLossTracker,
    compute_features,
    load_features,
    save_features,
    train_loss_features,
)
from sampletune.samplers import ShuffleSampler, WeightedSampler
from sampletune.samplers.base import epoch_draws
from sampletune.swift.family import SwiftFamily
from sampletune.swift.params import SwiftParams
from sampletune.swift.sampler_file import load_sampler, save_sampler
from sampletune.train import train

BASE = dict(dataset="digits", train_subset=400, epochs=2, lr=0.05, batch_size=64,
            device="cpu")
FLAGS = ["--threads", "1", "train", "--dataset", "digits", "--train-subset", "400",
         "--epochs", "2", "--lr", "0.05", "--batch-size", "64", "--quiet"]


@pytest.fixture(scope="module")
def sampler_file(tmp_path_factory):
    """A sampler of ``swift search`` with the mlp (``feature_arch`` mlp) on 360 noisy
    digits, its parameters set to a cut of the highest quarter of G (a search this short
    may keep uniform, which reads no feature)."""
    from sampletune.experiments.swift_pipeline import run_swift
    from sampletune.swift.search import SearchConfig

    out = tmp_path_factory.mktemp("search") / "ss"
    run_swift(RunConfig(model="mlp", out=str(out), **BASE),
              SearchConfig(rounds=2, finetune_epochs=1, agent="random"), search_cost=0.5,
              progress=False)
    spec = load_sampler(out / "sampler.json")
    cut = SwiftParams((0.0, 0.25, 0.5, 0.75, 1.0), (1.0, 1.0, 1.0, 0.5, 0.0), (1.0, 0.5))
    return str(save_sampler(out / "cut.json", dataclasses.replace(spec, params=cut)))


def _cfg(sampler_file, **kw):
    return RunConfig(sampler="swift", weights=sampler_file, **{**BASE, **kw})


def _swift_trained(cfg, data, probs):
    """``cfg.model`` trained from scratch with sampling probabilities ``probs``, directly."""
    draws = epoch_draws(len(data.train), cfg.budget, cfg.batch_size)
    return train(new_model(cfg, data), data, WeightedSampler(probs, draws, seed=cfg.seed),
                 cfg.train_config(), progress=False)


def _same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(),
                                                 b.model.state_dict().values(), strict=True))


def _own_features(cfg):
    """The target's pre-trained features, computed here step by step."""
    data = load_data(cfg)
    n = len(data.train)
    tracker = TrainLossTracker(n, cfg.epochs)
    pre = train(new_model(cfg, data), data, ShuffleSampler(n, budget=cfg.budget, seed=cfg.seed),
                cfg.train_config(), observers=[tracker], progress=False)
    feats = compute_features(pre.best_model(), data.train.x, data.train.y, progress=False)
    return {**feats, **train_loss_features(tracker.mean(), data.train.y, cfg.seed)}


def test_another_model_gets_the_sampler_on_its_own_pretrained_features(sampler_file, tmp_path):
    cfg = _cfg(sampler_file, model="smallcnn")
    data = load_data(cfg)
    spec = load_sampler(sampler_file)
    assert spec.feature_arch == "mlp"
    source = feature_source(cfg, data)  # auto: smallcnn differs from the file's mlp
    assert source.kind == "target"
    feats = _own_features(cfg)
    expected = SwiftFamily(feats, spec.features, spec.transform,
                           spec.grad_feature).probabilities(spec.params)
    probs, pre = target_probabilities(cfg, data, source, None, progress=False)
    torch.testing.assert_close(probs, expected, rtol=0, atol=0)
    assert not torch.allclose(probs, spec.probabilities())  # not the search's features
    assert 0 <= pre["best_epoch"] < cfg.epochs

    # The whole run trains smallcnn from scratch with exactly that sampler, and says so.
    out = tmp_path / "run"
    result = run_train(cfg.replace(out=str(out)), progress=False)
    assert result.final["swift_features"] == (
        "sampler searched with mlp; features from the target's own pre-trained smallcnn "
        "(uniform, 2 epochs, early-stopped), each cdf-normalised on its own distribution")
    assert _same_weights(result, _swift_trained(cfg, data, expected))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["swift_features"] == result.final["swift_features"]
    assert summary["pretrained"]["best_epoch"] == pre["best_epoch"]
    saved = load_features(next((out / "features").glob("*.npz")), n=len(data.train))
    for k, v in feats.items():
        torch.testing.assert_close(saved[k], v, rtol=0, atol=0)


def test_the_same_seed_gives_the_same_transferred_run(sampler_file, tmp_path):
    cfg = _cfg(sampler_file, model="smallcnn", epochs=1)
    a = run_train(cfg.replace(out=str(tmp_path / "a")), progress=False)
    b = run_train(cfg, progress=False)  # no run directory: nothing cached
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]
    assert _same_weights(a, b)
    # Rerunning resumes the finished run; another source is another experiment.
    again = run_train(cfg.replace(out=str(tmp_path / "a")), progress=False)
    assert again.final["test_acc"] == a.final["test_acc"]
    with pytest.raises(ConfigError, match=r"^out: .*differs in: .*swift_features"):
        run_train(cfg.replace(out=str(tmp_path / "a"), swift_features="search"),
                  progress=False)


def test_the_same_architecture_uses_the_saved_features_as_before(sampler_file):
    cfg = _cfg(sampler_file, model="mlp")
    data = load_data(cfg)
    source = feature_source(cfg, data)
    assert source.kind == "search"
    assert source.line() == ("sampler searched with mlp; features from the search's mlp "
                             "(feature_arch), as saved (same architecture)")
    saved = load_sampler(sampler_file).probabilities()
    result = run_train(cfg, progress=False)
    assert _same_weights(result, _swift_trained(cfg, data, saved))
    # Asked for, the model's own pre-training is the search's w_share: the same features.
    own = feature_source(cfg.replace(swift_features="target"), data)
    probs, _ = target_probabilities(cfg, data, own, None, progress=False)
    torch.testing.assert_close(probs, saved, rtol=0, atol=0)


def test_a_refined_sampler_keeps_its_features_on_another_model(sampler_file, tmp_path):
    # A refined file's loss comes from the search's Swift model (trained on a cut), which
    # the target's uniform pre-training does not reproduce: `auto` keeps the saved features.
    spec = dataclasses.replace(load_sampler(sampler_file), refined=True)
    refined = str(save_sampler(Path(sampler_file).parent / "refined.json", spec))
    assert load_sampler(refined).refined and not load_sampler(sampler_file).refined
    cfg = _cfg(refined, model="smallcnn")
    source = feature_source(cfg, load_data(cfg))
    assert source.kind == "search"
    assert source.line().endswith("(not the target smallcnn's; refined: the loss of the "
                                  "search's Swift model, trained on a cut)")
    assert feature_source(cfg.replace(swift_features="target"), load_data(cfg)).kind == \
        "target"  # still available when asked for
    for value in ("yes", 1, 0):  # JSON 1 and 0 are numbers, not booleans
        bad = json.loads(Path(refined).read_text()) | {"refined": value}
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(ConfigError, match=f"^sampler_file: .*refined is {value!r}"):
            load_sampler(tmp_path / "bad.json")


def test_the_cli_says_which_features_it_uses(sampler_file, tmp_path, capsys):
    out = tmp_path / "search-features"
    assert main([*FLAGS, "--model", "smallcnn", "--sampler", "swift", "--weights",
                 sampler_file, "--swift-features", "search", "--epochs", "1",
                 "--out", str(out)]) == 0
    line = ("sampler searched with mlp; features from the search's mlp (feature_arch), as "
            "saved (not the target smallcnn's)")
    assert f"  sampler features: {line}\n" in capsys.readouterr().out
    assert json.loads((out / "summary.json").read_text())["swift_features"] == line
    assert main(["report", str(out)]) == 0
    assert f"Sampler features: {line}." in capsys.readouterr().out


def test_bad_combinations_are_one_line_config_errors(sampler_file, tmp_path, capsys):
    with pytest.raises(ConfigError, match="^swift_features: 'target' given, but sampler "
                       "'uniform' reads no Swift sampler file"):
        RunConfig(swift_features="target")
    with pytest.raises(ConfigError, match="^swift_features: target: --crop-sampling"):
        RunConfig(sampler="swift", weights=sampler_file, crop_sampling=True,
                  augment="standard", swift_features="target")
    assert main([*FLAGS, "--sampler", "swift", "--weights", sampler_file,
                 "--swift-features", "theirs"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "swift_features: invalid choice" in err
    # a sampler on a feature no model computes cannot take the target's features
    spec = load_sampler(sampler_file)
    feats = load_features(spec.feature_file)
    feats["custom"] = feats["loss"]
    path = tmp_path / "custom" / "features.npz"
    path.parent.mkdir()
    save_features(path, feats, FeatureKey("digits", "train", 0, "mlp"))
    custom = save_sampler(tmp_path / "custom" / "sampler.json", dataclasses.replace(
        spec, features=("custom", "renormed_entropy"), feature_file=str(path),
        feature_model=""))
    assert main([*FLAGS, "--model", "smallcnn", "--sampler", "swift", "--weights",
                 str(custom)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "swift_features: target: the sampler reads ['custom']" \
        in err
