import dataclasses
import json

import pytest
import torch
from helpers import FAST_BO, swift_features

from sampletune.errors import ConfigError
from sampletune.models import build_model
from sampletune.samplers import ShuffleSampler
from sampletune.swift.family import InvalidSampler, SwiftFamily
from sampletune.swift.sampler_file import (
    SamplerSpec,
    load_sampler,
    save_sampler,
    to_weighted_sampler,
)
from sampletune.swift.search import (
    FineTuner,
    SearchConfig,
    finetune_budget_for,
    load_trials,
    run_search,
)
from sampletune.swift.verify import rank_metrics
from sampletune.train import TrainConfig, seeded_model, train


def _clean_mass(noisy):
    """A cheap stand-in for the inner loop: probability mass on clean examples."""
    return lambda probs, trial: float(probs[~noisy].sum())


def _search(tmp_path, name, rounds=7, agent="bo", score=None, **kw):
    feats, noisy = swift_features()
    cfg = SearchConfig(rounds=rounds, agent=agent, seed=3,
                       agent_options=FAST_BO if agent == "bo" else {}, **kw)
    family = SwiftFamily(feats, cfg.features, cfg.transform)
    return run_search(tmp_path / name, family, score or _clean_mass(noisy), cfg,
                      progress=False)


def test_search_records_every_trial_and_returns_the_top(tmp_path):
    result = _search(tmp_path, "a", agent="random")
    trials = load_trials(tmp_path / "a")
    assert [t["trial"] for t in trials] == list(range(7)) == [t["trial"] for t in result.trials]
    assert result.best_score == max(t["score"] for t in trials)
    assert all(t["status"] == "ok" and len(t["x"]) == 10 and t["seconds"] >= 0 for t in trials)
    assert all(0 <= t["agent_seconds"] <= t["seconds"] for t in trials)
    assert 0 < result.agent_time <= result.wall_time


def test_interrupted_search_resumes_to_the_same_result(tmp_path):
    full = _search(tmp_path, "full", rounds=5)
    _, noisy = swift_features()

    def dies_at_trial_4(probs, trial):
        if trial == 4:
            raise KeyboardInterrupt
        return _clean_mass(noisy)(probs, trial)

    with pytest.raises(KeyboardInterrupt):
        _search(tmp_path, "cut", rounds=5, score=dies_at_trial_4)
    assert len(load_trials(tmp_path / "cut")) == 4
    resumed = _search(tmp_path, "cut", rounds=5)
    timing = ("seconds", "agent_seconds", "elapsed")
    strip = [{k: v for k, v in t.items() if k not in timing} for t in resumed.trials]
    assert strip == [{k: v for k, v in t.items() if k not in timing} for t in full.trials]
    assert resumed.best == full.best
    # A finished search reruns without new trials.
    again = _search(tmp_path, "cut", rounds=5,
                    score=lambda p, t: pytest.fail("no trial should run"))
    assert len(again.trials) == 5


def test_failed_trials_are_recorded_not_raised(tmp_path):
    def flaky(probs, trial):
        if trial == 1:
            raise InvalidSampler("all examples have zero sampling probability")
        return float("nan") if trial == 2 else 0.5 + trial / 100

    result = _search(tmp_path, "f", agent="rl", score=flaky)
    status = [t["status"] for t in result.trials]
    assert status[1:3] == ["failed", "failed"] and status.count("ok") == 5
    assert result.trials[1]["score"] is None and "zero" in result.trials[1]["error"]
    assert result.best_score == pytest.approx(0.56)


def test_all_failed_search_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="all 3 trials failed"):
        _search(tmp_path, "x", rounds=3, agent="random", score=lambda p, t: float("nan"))


def test_resume_with_other_settings_is_refused(tmp_path):
    _search(tmp_path, "s", rounds=2, agent="random")
    with pytest.raises(ConfigError, match="another experiment.*search.transform"):
        _search(tmp_path, "s", rounds=2, agent="random", transform="cdf")


def test_search_config_validates():
    with pytest.raises(ConfigError, match="agent"):
        SearchConfig(agent="grid")
    with pytest.raises(ConfigError, match="finetune_budget"):
        SearchConfig(finetune_budget=0)
    assert finetune_budget_for(3.0, 40, 5, 40) == pytest.approx(0.6)
    assert finetune_budget_for(3.0, 4, 5, 40) == 1.0


def test_finetuner_scores_on_validation_and_keeps_w_share(tiny_data):
    cfg = TrainConfig(epochs=2, batch_size=32, lr=0.05, lr_schedule="cosine")
    model = seeded_model(lambda: build_model("mlp", tiny_data.input_shape, 3), 0)
    w_share = train(model, tiny_data, ShuffleSampler(len(tiny_data.train)), cfg,
                    progress=False).model
    before = {k: v.clone() for k, v in w_share.state_dict().items()}
    tuner = FineTuner(w_share, tiny_data, cfg, SearchConfig(finetune_epochs=2,
                                                            finetune_budget=0.5))
    clean = (~tiny_data.train.noisy).double()
    a = tuner(clean / clean.sum(), trial=0)
    assert 0.0 <= a <= 1.0 and a == tuner(clean / clean.sum(), trial=0)
    assert a == tuner(clean / clean.sum(), trial=5)  # common random numbers across trials
    assert all(torch.equal(before[k], v) for k, v in w_share.state_dict().items())
    assert tuner.num_samples == round(len(tiny_data.train) * 0.5)


def test_sampler_file_round_trip_and_weighted_sampler(tmp_path):
    from sampletune.features import FeatureKey, save_features

    feats, _ = swift_features()
    result = _search(tmp_path, "run", rounds=3, agent="random")
    key = FeatureKey("d", "train", 0, "m")
    feat_path = save_features(tmp_path / "run" / "feats" / "f.npz", feats, key)
    spec = SamplerSpec(result.best, ("train_loss", "renormed_entropy"), "cgf", str(feat_path),
                       300, result.best_score)
    path = save_sampler(tmp_path / "run" / "sampler.json", spec)
    assert json.loads(path.read_text())["feature_file"] == "feats/f.npz"
    outside = dataclasses.replace(spec, feature_file=str(tmp_path / "f.npz"))
    with pytest.raises(ConfigError, match="^feature_file: .* is outside the folder"):
        save_sampler(tmp_path / "run" / "other.json", outside)
    loaded = load_sampler(path)
    assert loaded.params == spec.params and loaded.n == 300
    sampler = to_weighted_sampler(path, 50, seed=1)
    expected = SwiftFamily(feats, ("train_loss", "renormed_entropy")).probabilities(result.best)
    assert torch.allclose(sampler.probabilities, expected)
    assert len(sampler.epoch_indices()) == 50
    bad = dataclasses.replace(loaded, n=301)
    with pytest.raises(ConfigError, match="holds 300 examples"):
        bad.probabilities()


def test_rank_metrics_sr_and_tr():
    assert rank_metrics([0.1, 0.2, 0.3], [0.5, 0.6, 0.7]) == {"SR": pytest.approx(1.0), "TR": 1}
    assert rank_metrics([0.1, 0.2, 0.3], [0.7, 0.6, 0.5]) == {"SR": pytest.approx(-1.0), "TR": 3}
    tied = rank_metrics([0.9, 0.2, 0.3], [0.6, 0.6, 0.5])
    assert tied["TR"] == 1
    constant = rank_metrics([0.5, 0.5], [0.7, 0.6])
    assert constant == {"SR": None, "TR": 1}  # undefined; JSON null, not a bare NaN


def test_select_trials_last_or_spread_over_the_ranking():
    from sampletune.swift.verify import select_trials

    ok = [{"trial": t, "score": s} for t, s in enumerate([0.5, 0.9, 0.1, 0.7, 0.3, 0.8])]
    assert [r["trial"] for r in select_trials(ok, 2)] == [4, 5]
    spread = select_trials(ok, 3, "spread")  # ranks 0, 2, 5 of 0.9 0.8 0.7 0.5 0.3 0.1
    assert [r["trial"] for r in spread] == [1, 2, 3]
    assert len(select_trials(ok, 10, "spread")) == 6
    with pytest.raises(ConfigError, match="select"):
        select_trials(ok, 2, "best")
