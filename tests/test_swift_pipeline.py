import argparse
import dataclasses
import json
import math

import pytest
import torch

from sampletune.cli import main
from sampletune.commands import swift as swift_cli
from sampletune.errors import ConfigError
from sampletune.experiments import run_train
from sampletune.experiments.config import RunConfig
from sampletune.experiments.swift_pipeline import run_swift, verify_run
from sampletune.features import compute_features, load_features, train_loss_features
from sampletune.swift.diagnostics import reference_spread
from sampletune.swift.params import SwiftParams
from sampletune.swift.sampler_file import load_sampler, to_weighted_sampler
from sampletune.swift.search import SearchConfig, load_trials

RUN = RunConfig(dataset="digits", noise=0.4, train_subset=400, model="mlp", epochs=3,
                batch_size=64, lr=0.05, lr_schedule="cosine", device="cpu")
SEARCH = SearchConfig(rounds=3, finetune_epochs=1, agent="random")


@pytest.mark.slow
def test_run_swift_end_to_end_resumes_and_verifies(tmp_path, capsys):
    # The refinement (step 6) has its own test below; here it is off.
    search = dataclasses.replace(SEARCH, refine=False)
    run = RUN.replace(out=str(tmp_path / "run"))
    report = run_swift(run, search, search_cost=0.5, progress=False)
    out = tmp_path / "run"
    assert report["refine"]["ambiguous"] is None and not (out / "refined").exists()
    for name in ("report.json", "report.md", "sampler.json", "model.pt", "fig1_plane.png",
                 "fig2b_loss_percentile.png", "fig3_search.png", "search/trials.jsonl"):
        assert (out / name).exists(), name
    assert 0 <= report["uniform"]["test_acc"] <= 1 and 0 <= report["swift"]["test_acc"] <= 1
    # 40 validation examples: the report warns that its selections are unreliable
    assert report["warnings"] and "**Warning:** the validation split has 40 examples" in \
        (out / "report.md").read_text()
    s = report["search"]
    # Each training's last epoch unless early stopping beats it by two standard errors
    # (wins - losses above 2 sqrt(wins + losses)); then Swift unless validation prefers
    # the uniform model.
    chosen = report["chosen"]
    w, lo = chosen["early_stop_wins"], chosen["early_stop_losses"]
    kind = "early_stopped" if w - lo > 2 * math.sqrt(w + lo) else "last_epoch"
    assert chosen["uniform_model"] == kind
    sw, sl = chosen["swift_early_stop_wins"], chosen["swift_early_stop_losses"]
    swift_kind = "early_stopped" if sw - sl > 2 * math.sqrt(sw + sl) else "last_epoch"
    b, c = chosen["val_wins"], chosen["val_losses"]
    if s["best_origin"] == "uniform" and not s["estimated_cut_retrained"]:
        assert report["swift"] == report["uniform"] and (sw, sl) == (w, lo)
    if s["best_origin"] == "estimated-cut":
        kept = "swift"
    else:
        kept = "swift" if b >= c and s["best_origin"] != "uniform" else "uniform"
    metrics = (report["swift"][swift_kind] if kept == "swift" else
               report["uniform"][kind])
    assert chosen == {"name": kept, "uniform_model": kind, "swift_model": swift_kind,
                      "early_stop_wins": w, "early_stop_losses": lo,
                      "swift_early_stop_wins": sw, "swift_early_stop_losses": sl,
                      "val_wins": b, "val_losses": c, "refined": False, **metrics}
    # The reference samplers are the first trials, and the diagnostics report them.
    trials = load_trials(out / "search")  # the journal's finished records
    assert [t["origin"] for t in trials] == ["uniform", "drop-top-0.1", "drop-top-0.2"]
    d = report["diagnostics"]
    assert set(d["samplers"]) == {"uniform", "drop-top-0.1", "drop-top-0.2",
                                  "agent's recommendation", "retrained"}
    assert d["samplers"]["uniform"]["noisy_mass"] == pytest.approx(0.4, abs=0.01)
    assert d["samplers"]["uniform"]["ess"] == pytest.approx(1.0)
    assert d["samplers"]["drop-top-0.2"]["ess"] == pytest.approx(0.8, abs=0.01)
    assert d["samplers"]["uniform"]["least_drawn_class_mass"] == pytest.approx(1.0)
    assert d["samplers"]["drop-top-0.2"]["least_drawn_class_mass"] < 1.0
    assert set(d["feature_auroc"]["w_share (best val epoch)"]) >= {"loss", "renormed_entropy"}
    # Whether the references' fine-tunes differ by more than validation noise (40 examples)
    refs = [t["score"] for t in trials]
    assert d["reference_spread"] == reference_spread(refs, 40)
    assert ("could not tell uniform from" in (out / "report.md").read_text()) \
        == d["reference_spread"]["flat"]
    # model.pt is the kept model: its validation accuracy is the one reported.
    from sampletune.experiments.setup import load_data, new_model
    from sampletune.io import load_torch
    from sampletune.train import evaluate

    data = load_data(run)
    model = new_model(run, data)
    model.load_state_dict(load_torch(out / "model.pt", "model"))
    assert evaluate(model, data.val)["acc"] == chosen["val_acc"]
    c = report["cost"]
    assert c["refine"] == 0.0
    assert c["pipeline"] == pytest.approx(1 + c["features"] + c["search"] + c["retrain"])
    assert s["finetune_budget"] == pytest.approx(0.5 * 3 / 3)
    assert s["cost_epoch_trainings"] == pytest.approx(0.5)
    spec = load_sampler(out / "sampler.json")
    fell_back = s["best_origin"] == "uniform"  # the pick did not clearly beat uniform
    assert spec.score == (s["uniform_finetune_val_acc"] if fell_back else s["best_val_acc"])
    assert spec.n == 360  # 400 minus 10% validation
    assert len(to_weighted_sampler(spec, seed=0).epoch_indices()) == 360
    # The sampler file names the model its features came from (w_share), for crop sampling.
    w_share = new_model(run, data)
    w_share.load_state_dict(load_torch(spec.feature_model, "weights"))
    assert spec.feature_arch == "mlp" and torch.equal(
        compute_features(w_share, data.train.x, data.train.y, progress=False)["loss"],
        load_features(spec.feature_file)["loss"])
    saved = load_features(spec.feature_file)  # the class-relative option is saved beside
    assert torch.equal(saved["class_train_loss"], train_loss_features(
        saved["train_loss"], data.train.y, run.seed)["class_train_loss"])
    # The default loss feature (train_loss) has no value for a new crop: a one-line refusal
    # (crop sampling itself is tested with a paper-features sampler in test_crop_sampling).
    assert main(["train", "--dataset", "digits", "--train-subset", "400", "--model", "mlp",
                 "--noise", "0.4", "--sampler", "swift", "--weights", str(out / "sampler.json"),
                 "--crop-sampling", "--augment", "standard", "--epochs", "1", "--quiet",
                 "--device", "cpu"]) == 2
    assert "crop_sampling: the sampler uses ['train_loss']" in capsys.readouterr().err

    # Rerunning resumes every step and reproduces the report.
    again = run_swift(run, search, search_cost=0.5, progress=False)
    assert again["swift"] == report["swift"] and again["search"]["best_params"] == \
        s["best_params"]
    with pytest.raises(ConfigError, match="holds another experiment .differs in: search"):
        run_swift(run, SearchConfig(rounds=4, finetune_epochs=1, agent="random"),
                  search_cost=0.5, progress=False)

    result = verify_run(out, k=2, progress=False)
    assert result["k"] == 2 and result["TR"] in (1, 2) and (out / "verify.json").exists()


def _parser():
    parser = argparse.ArgumentParser(prog="sampletune")
    swift_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_parses_search_and_verify():
    args = _parser().parse_args(["swift", "search", "--dataset", "digits", "--rounds", "5",
                                 "--transform", "cdf", "--agent", "rl", "--out", "x"])
    assert (args.rounds, args.transform, args.agent) == (5, "cdf", "rl")
    assert args.finetune_epochs is None  # not given: SearchConfig's (or --config's) value
    args = _parser().parse_args(["swift", "verify", "--run", "x", "--k", "3"])
    assert args.k == 3 and args.func is swift_cli._cmd_verify
    with pytest.raises(SystemExit):
        _parser().parse_args(["swift", "search", "--agent", "grid"])


def test_cli_search_bad_value_is_a_config_error():
    args = _parser().parse_args(["swift", "search", "--rounds", "0", "--out", "x"])
    with pytest.raises(ConfigError, match="rounds"):
        args.func(args)


@pytest.mark.slow
def test_demo_prints_uniform_early_stopping_cleanlab_and_swift(tmp_path, monkeypatch, capsys):
    from sampletune.experiments import swift_pipeline as pipeline

    monkeypatch.setattr(pipeline, "DEMO_RUN", RUN)
    monkeypatch.setattr(pipeline, "DEMO_SEARCH", SEARCH)
    means = pipeline.demo(tmp_path / "demo", seeds=(0,), progress=False)
    out = capsys.readouterr().out
    for row in ("uniform (last epoch)", "uniform, early stopped", "cleanlab, early stopped",
                "swift search (kept model)"):
        assert row in out and 0 <= means[row] <= 1
    assert "one training" in out


@pytest.mark.slow
def test_without_references_the_pick_is_retrained_and_guarded(tmp_path):
    from sampletune.experiments.setup import load_data, new_model
    from sampletune.io import load_torch
    from sampletune.train import evaluate

    run = RUN.replace(out=str(tmp_path / "run"))
    report = run_swift(run, dataclasses.replace(SEARCH, references=False), search_cost=0.5,
                       progress=False)
    assert report["search"]["best_origin"] == "agent"  # no uniform reference, no fallback
    assert (tmp_path / "run" / "swift" / "checkpoint.pt").exists()
    chosen = report["chosen"]
    assert chosen["name"] == ("swift" if chosen["val_wins"] >= chosen["val_losses"]
                              else "uniform")
    data = load_data(run)
    model = new_model(run, data)
    model.load_state_dict(load_torch(tmp_path / "run" / "model.pt", "model"))
    assert evaluate(model, data.val)["acc"] == chosen["val_acc"]


def test_when_the_search_falls_back_the_estimated_cut_is_retrained_and_guarded(tmp_path,
                                                                             monkeypatch):
    from sampletune.experiments import swift_pipeline as pipeline
    from sampletune.experiments.setup import load_data, new_model
    from sampletune.io import load_torch
    from sampletune.train import evaluate

    # The fine-tunes saw nothing beat uniform (forced: the pick is always the uniform trial).
    monkeypatch.setattr(pipeline, "simplest_clear_winner",
                        lambda trials, rec, n_val: next(t for t in trials
                                                        if t["origin"] == "uniform"))
    run = RUN.replace(out=str(tmp_path / "run"))
    report = run_swift(run, SEARCH, search_cost=0.5, progress=False)
    s, chosen = report["search"], report["chosen"]
    assert s["estimated_cut_retrained"] and s["estimated_noisy_share"] > 0.05
    assert (tmp_path / "run" / "swift" / "checkpoint.pt").exists()
    assert report["cost"]["retrain"] > 0
    w, lo = chosen["val_wins"], chosen["val_losses"]
    kept = w - lo > math.sqrt(w + lo)  # not backed by the search: it must clearly win
    assert chosen["name"] == ("swift" if kept else "uniform")
    assert s["best_origin"] == ("estimated-cut" if kept else "uniform")
    spec = load_sampler(tmp_path / "run" / "sampler.json")
    dropped = (spec.probabilities() == 0).float().mean().item()
    share = s["estimated_noisy_share"]
    assert dropped == (pytest.approx(share, abs=0.01) if kept else 0.0)
    data = load_data(run)
    model = new_model(run, data)
    model.load_state_dict(load_torch(tmp_path / "run" / "model.pt", "model"))
    assert evaluate(model, data.val)["acc"] == chosen["val_acc"]
    assert "estimated noisy share" in (tmp_path / "run" / "report.md").read_text()


@pytest.mark.slow
def test_the_cut_rescored_by_the_swift_model_is_retrained_and_guarded(tmp_path, monkeypatch):
    from sampletune.experiments import swift_pipeline as pipeline
    from sampletune.experiments.setup import load_data, new_model
    from sampletune.io import load_torch
    from sampletune.swift.family import SwiftFamily
    from sampletune.swift.reference import estimated_cut, loss_mixture, rescored_cut
    from sampletune.train import evaluate

    # The search picks a cut and validation keeps its Swift model (forced), and the loss
    # mixture is always uncertain enough to re-score the cut.
    monkeypatch.setattr(pipeline, "simplest_clear_winner",
                        lambda trials, rec, n_val: next(t for t in trials
                                                        if t["origin"] == "drop-top-0.2"))
    monkeypatch.setattr(pipeline, "paired_comparison",
                        lambda *a, **k: {"wins": 1, "losses": 0, "keep": True})
    monkeypatch.setattr(pipeline, "MIN_AMBIGUOUS", 0.0)
    run = RUN.replace(out=str(tmp_path / "run"))
    out = tmp_path / "run"
    report = run_swift(run, SEARCH, search_cost=0.5, progress=False)
    r, chosen = report["refine"], report["chosen"]
    assert r["retrained"] and (out / "refined" / "checkpoint.pt").exists()
    # The swapped share is the one of the two cuts at the estimated noisy share.
    data = load_data(run)
    w_feats = load_features(load_sampler(out / "sampler.json").feature_file) if r["kept"] \
        else None
    (feature_file,) = (out / "features").glob("*.npz")
    (refined_file,) = (out / "features" / "refined").glob("*.npz")
    family = SwiftFamily(load_features(feature_file), SEARCH.features, SEARCH.transform)
    rfamily = SwiftFamily(load_features(refined_file), ("loss",), SEARCH.transform)
    share, _ = estimated_cut(family, SEARCH.segments, run.seed)
    assert report["search"]["estimated_noisy_share"] == share
    assert r["ambiguous"] == loss_mixture(family, run.seed).ambiguous
    params, swapped = rescored_cut(family, rfamily, share, SEARCH.segments)
    assert r["swapped"] == swapped and r["params"] == params.to_dict()
    # Kept unless validation prefers the Swift model it refines (paired).
    w, lo = r["val_wins"], r["val_losses"]
    assert r["kept"] == (w >= lo) == chosen["refined"]
    kept_metrics = (r["metrics"] if r["kept"] else report["swift"])[
        r["model"] if r["kept"] else chosen["swift_model"]]
    assert {k: chosen[k] for k in kept_metrics} == kept_metrics
    model = new_model(run, data)
    model.load_state_dict(load_torch(out / "model.pt", "model"))
    assert evaluate(model, data.val)["acc"] == chosen["val_acc"]
    spec = load_sampler(out / "sampler.json")
    assert spec.refined == r["kept"]
    if r["kept"]:  # the sampler file names the re-scored features and the Swift model
        assert spec.feature_file == str(refined_file.resolve()) and spec.features == ("loss",)
        assert torch.equal(spec.probabilities(), rfamily.probabilities(params))
        swift_model = new_model(run, data)
        swift_model.load_state_dict(load_torch(spec.feature_model, "weights"))
        assert torch.equal(compute_features(swift_model, data.train.x, data.train.y,
                                            progress=False)["loss"], w_feats["loss"])
    else:
        assert spec.feature_file == str(feature_file.resolve())
    # `train --sampler swift` with the sampler file retrains the kept Swift model step for
    # step, and `--sampler uniform` w_share: 360 examples, not whole batches of 64.
    for sampler, weights, run_dir in (("swift", str(out / "sampler.json"),
                                       out / ("refined" if r["kept"] else "swift")),
                                      ("uniform", None, out / "uniform")):
        res = run_train(run.replace(sampler=sampler, weights=weights, out=None),
                        progress=False)
        logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
        assert [(h["steps"], h["train_loss"]) for h in res.history] == \
            [(h["steps"], h["train_loss"]) for h in logged]
    c = report["cost"]
    assert c["refine"] > 0 and c["pipeline"] == pytest.approx(
        1 + c["features"] + c["search"] + c["retrain"] + c["refine"])
    md = (out / "report.md").read_text()
    assert "re-scored by the Swift model the cut" in md
    assert ("state_dict: swift (refined cut), " in md) == r["kept"]
    # Rerunning resumes and reproduces it.
    again = run_swift(run, SEARCH, search_cost=0.5, progress=False)
    assert {k: v for k, v in again["refine"].items() if k != "wall_time"} == \
        {k: v for k, v in r.items() if k != "wall_time"} and again["chosen"] == chosen
    # The report regenerated from report.json (sorted keys) lists the samplers as the search
    # made them, and verify retrains the searched samplers on the search's own features,
    # not on the refined cut's re-scored ones that sampler.json names.
    from sampletune.commands.report import render

    assert render(out, write=False)[0].strip() == (out / "report.md").read_text().strip()
    seen = []
    real_train = pipeline.train
    monkeypatch.setattr(pipeline, "train", lambda model, data, sampler, *a, **k: (
        seen.append(sampler.weights.clone()), real_train(model, data, sampler, *a, **k))[1])
    verify_run(out, k=2, progress=False)
    monkeypatch.setattr(pipeline, "train", real_train)
    searched = [family.probabilities(SwiftParams.from_dict(t["params"]))
                for t in load_trials(out / "search")[-2:]]
    assert len(seen) == 2 and all(torch.allclose(a / a.sum(), b / b.sum())
                                  for a, b in zip(seen, searched, strict=True))

    # Where the mixture decides nearly every example: no re-scoring, no retrain.
    monkeypatch.setattr(pipeline, "MIN_AMBIGUOUS", 1.01)
    run = RUN.replace(out=str(tmp_path / "agree"))
    report = run_swift(run, SEARCH, search_cost=0.5, progress=False)
    assert report["refine"]["ambiguous"] == r["ambiguous"] and report["refine"]["swapped"] is None
    assert not report["refine"]["retrained"] and not report["chosen"]["refined"]
    assert not (tmp_path / "agree" / "refined").exists()
    assert not (tmp_path / "agree" / "features" / "refined").exists()
    assert "the cut was not re-scored" in (tmp_path / "agree" / "report.md").read_text()

    # Where validation kept the uniform model, the refined cut must clearly beat it.
    monkeypatch.setattr(pipeline, "MIN_AMBIGUOUS", 0.0)
    monkeypatch.setattr(pipeline, "paired_comparison",
                        lambda *a, **k: {"wins": 0, "losses": 1, "keep": False})
    run = RUN.replace(out=str(tmp_path / "uniform-kept"))
    report = run_swift(run, SEARCH, search_cost=0.5, progress=False)
    r, chosen = report["refine"], report["chosen"]
    assert r["retrained"] and (chosen["val_wins"], chosen["val_losses"]) == (0, 1)
    w, lo = r["val_wins"], r["val_losses"]
    assert r["kept"] == (w - lo > math.sqrt(w + lo)) == chosen["refined"]
    assert chosen["name"] == ("swift" if r["kept"] else "uniform")
    kept = r["metrics"][r["model"]] if r["kept"] else report["uniform"][chosen["uniform_model"]]
    assert chosen["test_acc"] == kept["test_acc"]


def test_a_search_records_its_training_split_and_refuses_other_data_at_the_same_path(tmp_path):
    """Other labels in the same file: the search does not resume on them (it reused the old
    features and model) and verify does not retrain on them; a directory of an earlier
    version, which recorded no fingerprint, still resumes."""
    import numpy as np

    gen = np.random.default_rng(0)
    x = gen.normal(size=(300, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    data = tmp_path / "d.npz"
    np.savez(data, x=x, y=y)
    run = RunConfig(dataset="npz", data_dir=str(data), model="mlp", epochs=2, batch_size=32,
                    device="cpu", out=str(tmp_path / "run"))
    run_swift(run, SEARCH, search_cost=0.5, progress=False)
    settings = json.loads((tmp_path / "run" / "swift.json").read_text())
    assert isinstance(settings["run"]["data"], str) and settings["run"]["data_dir"] == str(data)
    flipped = y.copy()
    flipped[:100] = 1 - flipped[:100]
    np.savez(data, x=x, y=flipped)
    with pytest.raises(ConfigError, match=r"^out: .*differs in: run\.data\)"):
        run_swift(run, SEARCH, search_cost=0.5, progress=False)
    with pytest.raises(ConfigError, match="^data_dir: .*another training split than the search"):
        verify_run(tmp_path / "run", k=2, progress=False)
    # an earlier version's swift.json (no fingerprint) resumes, and keeps its form
    np.savez(data, x=x, y=y)
    # a damaged swift.json is named, not blamed on the data or retrained silently
    for edit in ({"run": {**settings["run"], "data": 0}},
                 {"search": {**settings["search"], "features": ["train_loss", "train_loss"]}},
                 {"search": {**settings["search"], "transform": "log"}}):
        (tmp_path / "run" / "swift.json").write_text(json.dumps({**settings, **edit}))
        with pytest.raises(ConfigError, match=r"^run: .*swift\.json"):
            verify_run(tmp_path / "run", k=2, progress=False)
    del settings["run"]["data"]
    (tmp_path / "run" / "swift.json").write_text(json.dumps(settings))
    run_swift(run, SEARCH, search_cost=0.5, progress=False)
    assert "data" not in json.loads((tmp_path / "run" / "swift.json").read_text())["run"]
    assert verify_run(tmp_path / "run", k=2, progress=False)["k"] == 2
