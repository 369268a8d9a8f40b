import math

import pytest
import torch
from helpers import FAST_BO, swift_features
from torch.utils.data import DataLoader, TensorDataset

from sampletune.errors import ConfigError
from sampletune.swift import (
    InvalidSampler,
    SearchConfig,
    SwiftFamily,
    SwiftStudy,
    load_sampler,
    run_search,
    sampler_from_file,
)
from sampletune.swift.reference import reference_params


def _run(study, noisy, rounds):
    """Score each trial by its probability mass on clean examples (a cheap inner loop)."""
    for _ in range(rounds):
        trial = study.ask()
        study.tell(trial, float(trial.probabilities[~noisy].sum()))
    return study


@pytest.mark.parametrize("agent", ["bo", "random", "rl"])
def test_same_seed_same_trials(agent):
    feats, noisy = swift_features(200)
    opts = FAST_BO if agent == "bo" else {}
    a, b, c = (_run(SwiftStudy(feats, seed=s, agent=agent, agent_options=opts), noisy, 9)
               for s in (1, 1, 2))
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.origin for t in a.trials][:6] == ["uniform"] + [f"drop-top-{q:g}" for q in
                                                            (0.1, 0.2, 0.3, 0.4, 0.5)]
    assert [t.params for t in a.trials][6:] != [t.params for t in c.trials][6:]
    assert a.best.number == b.best.number and a.best.state == "ok"


def test_study_asks_what_run_search_asks(tmp_path):
    """The study and ``swift search`` share one proposal step: the same seed and scores give
    the same cube points."""
    feats, noisy = swift_features(200)
    cfg = SearchConfig(rounds=8, agent="bo", seed=4, agent_options=FAST_BO,
                       features=("loss", "renormed_entropy"))  # the study's default
    family = SwiftFamily(feats, cfg.features, cfg.transform)
    result = run_search(tmp_path / "s", family, lambda p, t: float(p[~noisy].sum()), cfg,
                        initial=reference_params(family, cfg.segments), progress=False)
    study = _run(SwiftStudy(feats, seed=4, agent="bo", agent_options=FAST_BO), noisy, 8)
    assert [t.x.tolist() for t in study.trials] == [r["x"] for r in result.trials]


def test_trial_sampler_drives_a_dataloader():
    feats, _ = swift_features(200)
    study = SwiftStudy(feats, seed=0, agent="random", num_samples=64)
    trial = study.ask()
    assert trial.origin == "uniform" and trial.state == "pending"
    assert trial.probabilities.shape == (200,) and math.isclose(trial.probabilities.sum(), 1)
    loader = DataLoader(TensorDataset(torch.arange(200)), batch_size=16, sampler=trial.sampler)
    assert sum(len(b[0]) for b in loader) == 64


def test_failed_scores_are_failed_trials_not_crashes():
    feats, _ = swift_features(200)
    study = SwiftStudy(feats, seed=0, agent="random", references=False)
    for score in (None, float("nan"), float("inf"), 0.5, torch.tensor(0.7)):
        study.tell(study.ask(), score)
    assert [t.state for t in study.trials] == ["failed"] * 3 + ["ok"] * 2
    assert [t.error for t in study.trials[:3]] == ["no score", "score is nan", "score is inf"]
    assert study.best.number == 4 and study.best.score == pytest.approx(0.7)

    def boom(sampler):
        raise RuntimeError("diverged")

    assert study.optimize(boom, 2, catch=(RuntimeError,)) is study.best
    assert [t.error for t in study.trials[5:]] == ["RuntimeError: diverged"] * 2
    with pytest.raises(RuntimeError):
        study.optimize(boom, 1)


def test_unusable_proposals_are_recorded_and_skipped(monkeypatch):
    feats, noisy = swift_features(200)
    study = SwiftStudy(feats, seed=0, agent="random")
    real, calls = study.family.probabilities, []

    def first_fails(params):
        calls.append(params)
        if len(calls) == 1:
            raise InvalidSampler("all examples have zero sampling probability")
        return real(params)

    monkeypatch.setattr(study.family, "probabilities", first_fails)
    trial = study.ask()
    assert trial.number == 1 and trial.origin == "drop-top-0.1"
    assert study.trials[0].state == "failed" and "zero sampling" in study.trials[0].error


def test_ask_tell_order_is_checked():
    feats, _ = swift_features(200)
    study = SwiftStudy(feats, agent="random")
    trial = study.ask()
    with pytest.raises(ConfigError, match="^trial: trial 0 is still waiting"):
        study.ask()
    with pytest.raises(ConfigError, match="^score: 'high' is not a number"):
        study.tell(trial, "high")
    study.tell(trial, 0.1)
    with pytest.raises(ConfigError, match="^trial: trial 0 is not the one waiting"):
        study.tell(trial, 0.2)


@pytest.mark.parametrize("kw, field", [
    ({"seed": -1}, "seed"), ({"seed": 2**32}, "seed"), ({"agent": "cma"}, "agent"),
    ({"segments": 0}, "segments"), ({"transform": "log"}, "transform"),
    ({"feature_names": ("loss", "margin")}, "features"), ({"num_samples": 0}, "num_samples"),
    ({"agent_options": {"n_init": 0}}, "agent_options.n_init")])
def test_bad_settings_name_the_field(kw, field):
    feats, _ = swift_features(200)
    with pytest.raises(ConfigError, match=f"^{field}: "):
        SwiftStudy(feats, **kw)


def test_empty_features_and_no_trials_are_refused():
    feats, _ = swift_features(200)
    with pytest.raises(ConfigError, match="^features: "):
        SwiftStudy({})
    with pytest.raises(ConfigError, match="^n_trials: "):
        SwiftStudy(feats, agent="random").optimize(lambda s: 1.0, 0)


def test_save_best_round_trips_through_sampler_from_file(tmp_path):
    feats, noisy = swift_features(200)
    study = SwiftStudy(feats, seed=0, agent="random")
    with pytest.raises(ConfigError, match="^study: no successful trial"):
        study.save_best(tmp_path / "sampler.json")
    best = study.optimize(lambda s: None, 1)
    assert best is None
    _run(study, noisy, 7)
    path = study.save_best(tmp_path / "sampler.json")
    assert (tmp_path / "sampler-features.npz").exists()
    spec = load_sampler(path)
    assert spec.params == study.best.params and spec.score == study.best.score
    assert torch.allclose(spec.probabilities(), study.best.probabilities)
    sampler = sampler_from_file(path, 50, seed=3)
    assert len(sampler) == 50 and torch.allclose(sampler.probabilities,
                                                 study.best.probabilities)
    # Applied to other features (of a larger data set): same rule, new probabilities.
    other, _ = swift_features(300)
    moved = sampler_from_file(path, features=other, seed=3)
    assert len(moved) == 300
    with pytest.raises(ConfigError, match="^features: missing"):
        sampler_from_file(path, features={"loss": other["loss"]})
    with pytest.raises(ConfigError, match="^features: "):
        sampler_from_file(path, features=[1, 2])
    with pytest.raises(ConfigError, match="^feature_file: "):
        study.save_best(tmp_path / "sub" / "sampler.json", feature_file=tmp_path / "f.npz")
    assert not (tmp_path / "f.npz").exists()  # refused before anything was written


def test_a_sampler_file_records_its_split_or_warns_when_used_without_one(tmp_path, tiny_data):
    from sampletune.swift.sampler_file import checked_spec

    n = len(tiny_data.train)
    feats, _ = swift_features(n)
    study = SwiftStudy(feats, seed=0, agent="random")
    for _ in range(2):
        trial = study.ask()
        study.tell(trial, 0.5)
    bare = study.save_best(tmp_path / "bare" / "sampler.json")
    with pytest.warns(UserWarning, match="records no training split"):
        checked_spec(tiny_data, bare)
    fingerprint = tiny_data.train.fingerprint()
    pinned = study.save_best(tmp_path / "pinned" / "sampler.json", split=fingerprint)
    assert checked_spec(tiny_data, pinned).split == fingerprint


@pytest.mark.parametrize("spoil", [lambda f: f[:-1], lambda f: f.reshape(-1, 1),
                                   lambda f: f.tolist()])
def test_features_of_another_length_or_shape_are_one_line(spoil):
    feats, _ = swift_features(50)
    feats = {**feats, "renormed_entropy": spoil(feats["renormed_entropy"])}
    with pytest.raises(ConfigError, match=r"^features: shapes .*renormed_entropy"):
        SwiftStudy(feats)


def test_every_feature_is_checked_and_numpy_is_accepted():
    """Each feature, used or not, is real, finite, 1-D and of one length; numpy is fine."""
    feats, _ = swift_features(50)
    as_numpy = SwiftStudy({k: v.numpy() for k, v in feats.items()}, agent="random")
    assert torch.equal(as_numpy.ask().probabilities, SwiftStudy(feats, agent="random")
                       .ask().probabilities)
    nan = feats["grad_norm"].clone()
    nan[3] = math.nan
    for extra, match in ((torch.rand(7), r"shapes .*'extra': \(7,\)"),
                         ("hello", "shapes .*'extra': 'str'"),
                         (feats["loss"].to(torch.complex128), "extra has dtype"),
                         (nan, "extra has 1 NaN")):
        with pytest.raises(ConfigError, match=f"^features: {match}"):
            SwiftStudy({**feats, "extra": extra})


@pytest.mark.parametrize("kw, match", [
    ({"agent_options": [("n_init", 3)]}, "^agent_options: is a list"),
    ({"segments": True}, "^segments: True is not an integer"),
    ({"references": "no"}, "^references: 'no' is not a bool"),
    ({"feature_names": "loss"}, "^feature_names: 'loss' is not a sequence"),
    ({"feature_names": ["loss", "loss"]}, "^feature_names: .* repeats a name"),
])
def test_study_settings_are_checked(kw, match):
    feats, _ = swift_features(50)
    with pytest.raises(ConfigError, match=match):
        SwiftStudy(feats, **kw)


@pytest.mark.parametrize("score", [torch.tensor(0.5 + 1j), True, torch.tensor(True)])
def test_tell_refuses_complex_and_bool_scores(score):
    feats, _ = swift_features(50)
    study = SwiftStudy(feats, agent="random")
    trial = study.ask()
    with pytest.raises(ConfigError, match="^score: .* is not a number"):
        study.tell(trial, score)
    study.tell(trial, 0.5)
    assert trial.score == 0.5


@pytest.mark.parametrize("edit, match", [
    ({"params": {"e": "01", "v": [1, 1], "c": [0.1, 0.2]}}, "params.e: '01' is not a list"),
    ({"params": {"e": ["0", "0.5", "1"], "v": [1, 1, 1], "c": [0.1, 0.2]}}, "params.e: "),
    ({"params": {"e": [0, 0.5, 1], "v": [True, True, False], "c": [0.1, 0.2]}}, "params.v: "),
    ({"score": math.nan}, "score is nan"),
])
def test_hand_edited_sampler_file_is_refused_not_cast(tmp_path, edit, match):
    import json

    feats, _ = swift_features(50)
    study = SwiftStudy(feats, agent="random")
    study.tell(study.ask(), 0.5)
    path = study.save_best(tmp_path / "sampler.json")
    path.write_text(json.dumps({**json.loads(path.read_text()), **edit}))
    with pytest.raises(ConfigError, match=f"^sampler_file: .*{match}") as err:
        load_sampler(path)
    assert "\n" not in str(err.value)


def _told(study, noisy, rounds, fail_at=()):
    """Like :func:`_run`, with the trials numbered in ``fail_at`` told ``None``."""
    for _ in range(rounds):
        trial = study.ask()
        study.tell(trial, None if trial.number in fail_at else
                   float(trial.probabilities[~noisy].sum()))
    return study


def test_a_study_in_a_run_dir_resumes_to_the_trials_of_an_uninterrupted_one(tmp_path):
    feats, noisy = swift_features(200)
    settings = dict(seed=3, agent="bo", agent_options=FAST_BO)
    full = _told(SwiftStudy(feats, **settings), noisy, 11, fail_at={7})
    first = _told(SwiftStudy(feats, run_dir=tmp_path, **settings), noisy, 8, fail_at={7})
    waiting = first.ask()  # the process dies before this trial's score is told
    first.close()
    with SwiftStudy(feats, run_dir=tmp_path, **settings) as resumed:
        told = len(resumed.trials)  # 8, and the unusable proposals recorded before the wait
        assert told == waiting.number >= 8 and "failed" in {t.state for t in resumed.trials}
        assert [(t.number, t.state, t.score, t.error) for t in resumed.trials] == \
            [(t.number, t.state, t.score, t.error) for t in full.trials[:told]]
        again = resumed.ask()
        assert (again.number, again.origin, again.params) == \
            (waiting.number, waiting.origin, waiting.params)
        resumed.tell(again, float(again.probabilities[~noisy].sum()))
        _told(resumed, noisy, 2)
    assert [t.x.tolist() for t in resumed.trials] == [t.x.tolist() for t in full.trials]
    assert [t.score for t in resumed.trials] == [t.score for t in full.trials]
    assert resumed.best.number == full.best.number
    assert all(t.sampler is not None for t in resumed.trials if t.state == "ok")
    with pytest.raises(ConfigError, match="^study: is closed"):
        resumed.ask()


def test_a_study_run_dir_refuses_other_settings_features_and_folders(tmp_path):
    feats, noisy = swift_features(200)
    _run(SwiftStudy(feats, seed=0, agent="random", run_dir=tmp_path / "s"), noisy, 3).close()
    with pytest.raises(ConfigError, match=r"^run_dir: .*differs in: seed"):
        SwiftStudy(feats, seed=1, agent="random", run_dir=tmp_path / "s")
    other = {**feats, "loss": feats["loss"] + 1.0}
    with pytest.raises(ConfigError, match=r"^run_dir: .*differs in: features"):
        SwiftStudy(other, seed=0, agent="random", run_dir=tmp_path / "s")
    fresh = SwiftStudy(other, seed=0, agent="random", run_dir=tmp_path / "s", restart=True)
    assert fresh.trials == [] and not (tmp_path / "s" / "trials.jsonl").exists()
    fresh.close()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ConfigError, match=r"^run_dir: .*not a run directory.*a new or empty "
                                          r"run_dir\)$"):
        SwiftStudy(feats, seed=0, agent="random", run_dir=tmp_path / "mine")
    with pytest.raises(ConfigError, match="^restart"):
        SwiftStudy(feats, restart="yes")


def test_a_study_run_dir_is_one_study_at_a_time_and_stays_where_it_was_opened(tmp_path,
                                                                              monkeypatch):
    from sampletune import rundir

    feats, noisy = swift_features(200)
    monkeypatch.chdir(tmp_path)
    first = SwiftStudy(feats, seed=0, agent="random", run_dir="s")  # relative
    with pytest.raises(ConfigError, match=r"^run_dir: .* is open in this process"):
        SwiftStudy(feats, seed=0, agent="random", run_dir=tmp_path / "s")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    _run(first, noisy, 2)  # still journals in tmp_path/s
    first.close()
    assert not (tmp_path / "elsewhere" / "s").exists() and not rundir.held_here(tmp_path / "s")
    again = SwiftStudy(feats, seed=0, agent="random", run_dir=tmp_path / "s")
    assert len(again.trials) == 2
    again.close()
    # a refused study does not keep the folder locked
    lines = (tmp_path / "s" / "trials.jsonl").read_text().splitlines()
    (tmp_path / "s" / "trials.jsonl").write_text(lines[0] + "\n" + lines[0] + "\n")
    with pytest.raises(ConfigError, match="^run_dir: "):
        SwiftStudy(feats, seed=0, agent="random", run_dir=tmp_path / "s")
    assert not rundir.held_here(tmp_path / "s")
