"""Configuration composed of parts: every field reachable from flags and YAML (flat or by
part), containers coerced, one-line errors, and what earlier versions wrote still read."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import yaml

from sampletune.budget.table import GridSpec
from sampletune.cli import build_parser, main
from sampletune.commands.args import config_from_args, parts_from_args
from sampletune.commands.budget import GRID, TableDir
from sampletune.commands.demo import DemoConfig
from sampletune.configs import field_names
from sampletune.errors import ConfigError
from sampletune.experiments import RunConfig
from sampletune.experiments.config import DataConfig, SamplingConfig
from sampletune.train.config import TrainConfig

TRAIN = ["--threads", "1", "train", "--dataset", "digits", "--train-subset", "300",
         "--model", "mlp", "--epochs", "1", "--lr", "0.05", "--quiet"]
# What the previous version (one flat 28-field RunConfig, --noise 0.4 by default) wrote for
# TRAIN --out r; that command resumes it with --noise 0.4 (the default is 0 since).
OLD_CONFIG_YAML = """\
augment: none
batch_size: 128
budget: 1.0
data_dir: null
dataset: digits
device: auto
download: false
epochs: 1
extra: {}
lr: 0.05
lr_schedule: step
method: null
milestones:
- 0.5
- 0.75
model: mlp
momentum: 0.9
nesterov: false
noise: 0.4
noise_rate: null
noise_type: symmetric
noisy: null
out: OUT
sampler: uniform
seed: 0
train_subset: 300
val_fraction: 0.1
val_noise: false
weight_decay: 0.0005
weights: null
"""
OLD_IDENTITY = {
    "augment": "none", "batch_size": 128, "budget": 1.0, "data": "24afd6a0a3bdb640",
    "dataset": "digits", "device": "cpu", "epochs": 1, "extra": {}, "lr": 0.05,
    "lr_schedule": "step", "method": None, "milestones": [0.5, 0.75], "model": "mlp",
    "momentum": 0.9, "nesterov": False, "noise": 0.4, "noise_rate": None,
    "noise_type": "symmetric", "noisy": None, "sampler": "uniform",
    "sampletune_version": "0.1.0", "seed": 0, "train_subset": 300, "val_fraction": 0.1,
    "val_noise": False, "weight_decay": 0.0005, "weights": None}


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_a_config_yaml_of_the_previous_version_loads(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(OLD_CONFIG_YAML.replace("OUT", str(tmp_path / "r")))
    cfg = RunConfig.load(path)
    assert cfg == RunConfig(dataset="digits", train_subset=300, epochs=1, lr=0.05, noise=0.4,
                            out=str(tmp_path / "r"))
    assert cfg.train == TrainConfig(epochs=1, lr=0.05, device="auto")
    # and what this version writes reads back the same
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_a_run_directory_of_the_previous_version_resumes(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "identity.json").write_text(json.dumps(OLD_IDENTITY))
    (out / "config.yaml").write_text(OLD_CONFIG_YAML.replace("OUT", str(out)))
    assert main([*TRAIN, "--noise", "0.4", "--out", str(out)]) == 0, capsys.readouterr().err
    assert json.loads((out / "identity.json").read_text()) == OLD_IDENTITY
    # a setting the previous version could not set is part of the identity once set
    assert main([*TRAIN, "--noise", "0.4", "--out", str(out), "--gamma", "0.5"]) == 2
    assert "(differs in: gamma)" in capsys.readouterr().err


def test_the_removed_extra_setting_is_accepted_only_empty():
    assert RunConfig.from_dict({"extra": {}, "lr": 0.05}).lr == 0.05
    with pytest.raises(ConfigError, match=r"^extra: was removed"):
        RunConfig.from_dict({"extra": {"k": 1}})
    assert not hasattr(RunConfig(), "extra")


def test_flat_keywords_route_to_the_parts():
    cfg = RunConfig(dataset="digits", noise=0.2, sampler="oracle", lr=0.05, seed=3,
                    model="smallcnn")
    assert cfg.data == DataConfig(noise=0.2)
    assert cfg.sampling == SamplingConfig(sampler="oracle")
    assert (cfg.train.lr, cfg.train.seed, cfg.lr, cfg.seed) == (0.05, 3, 0.05, 3)
    assert cfg.replace(final_lr=1e-4, out="x").train.final_lr == 1e-4
    assert dataclasses.replace(cfg, epochs=2).epochs == 2
    assert RunConfig(method="sb").milestones == pytest.approx((1 / 3, 2 / 3))
    assert RunConfig().milestones == (0.5, 0.75) and RunConfig().device == "auto"
    with pytest.raises(ConfigError, match=r"^bogus: unknown config field"):
        RunConfig(bogus=1)


def test_yaml_by_part_and_flat_with_flags_on_top(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {final_lr: 1.0e-4, gamma: 0.5, lr: 0.2}\ndata: {noise: 0.2}\n"
                    "eval-every: 2\nloader_workers: 0\n")
    cfg, _ = config_from_args(parse("train", "--config", str(path), "--lr", "0.3"))
    assert (cfg.final_lr, cfg.gamma, cfg.lr, cfg.noise) == (1e-4, 0.5, 0.3, 0.2)
    assert (cfg.eval_every, cfg.loader_workers) == (2, 0)


@pytest.mark.parametrize("content,message", [
    ("train: {bogus: 1}\n", r"^train\.bogus: unknown config field \(allowed: epochs, "),
    ("train: 5\n", r"^train: 5 is not a mapping of its fields \(allowed: epochs, "),
    ("data: {lr: 0.1}\n", r"^data\.lr: unknown config field"),
    ("milestones: [0.5, x]\n", r"^milestones: 'x' is not a number"),
    ("gamma: 2\n", r"^gamma: 2.0 is outside \(0, 1\]"),
    ("loader_workers: -1\n", r"^loader_workers: -1 is negative"),
    ("lr: 0.1\nlr: 0.2\n", r"^lr: is set twice in one mapping"),
    ("noise: 0.2\ndata: {noise: 0.4}\n", r"^noise: is set twice in one configuration"),
    ("final-lr: 0.1\nfinal_lr: 0.2\n", r"^final_lr: is set twice in one configuration"),
])
def test_bad_yaml_values_are_one_line(tmp_path, content, message):
    path = tmp_path / "c.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        RunConfig.load(path)


def _flags(*words: str) -> set[str]:
    p = build_parser()
    for w in words:
        p = next(a for a in p._actions if hasattr(a, "choices") and isinstance(
            a.choices, dict)).choices[w]
    return {a.dest for a in p._actions}


def test_every_field_of_every_part_has_a_flag():
    from sampletune.autosampling.search import SearchConfig as AutoSamplingSearch
    from sampletune.swift.search import SearchConfig as SwiftSearch

    run = {*field_names(DataConfig), *field_names(TrainConfig), "model", "out"}
    assert run | set(field_names(SamplingConfig)) <= _flags("train")
    assert run | set(field_names(SwiftSearch)) - {"seed"} <= _flags("swift", "search")
    assert run | set(field_names(AutoSamplingSearch)) <= _flags("autosampling", "search")
    assert run <= _flags("autosampling", "replay")
    assert {*field_names(GridSpec), *field_names(TableDir)} <= _flags("budget-table")
    assert set(field_names(DemoConfig)) <= _flags("demo")


def test_every_budget_table_setting_is_reachable_from_flags_and_yaml(tmp_path):
    values = {"dataset": ["digits", "mnist1d"], "budgets": [0.4], "methods": ["sb"],
              "lr_schedules": ["cosine"], "augments": ["none", "standard"],
              "full_augments": ["standard"], "seeds": [7], "model": "cnn1d", "epochs": 5,
              "batch_size": 16, "lr": 0.2, "weight_decay": 0.001, "train_subset": 100,
              "warmup_epochs": 1, "data_dir": str(tmp_path), "device": "cpu",
              "out": str(tmp_path / "bt")}
    assert set(values) == {*field_names(GridSpec), *field_names(TableDir)}
    argv = [w for k, v in values.items()
            for w in (f"--{k.replace('_', '-')}", *map(str, v if isinstance(v, list) else [v]))]
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(values))
    parts = {"grid": GRID, "": TableDir()}
    for args in (parse("budget-table", *argv), parse("budget-table", "--config", str(path))):
        got = parts_from_args(args, parts)
        spec, out = got["grid"], got[""].out
        assert out == values["out"]
        for k, v in values.items():
            if k != "out":
                assert getattr(spec, k) == (tuple(v) if isinstance(v, list) else v), k
                assert getattr(spec, k) != getattr(GRID, k), k


def test_demo_settings_from_yaml_and_flags(tmp_path, capsys):
    path = tmp_path / "demo.yaml"
    path.write_text(f"seeds: [3, 4]\nout: {tmp_path / 'demo'}\n")
    cfg = parts_from_args(parse("demo", "--config", str(path), "--seeds", "5"),
                          {"": DemoConfig()})[""]
    assert cfg == DemoConfig(out=str(tmp_path / "demo"), seeds=(5,))
    path.write_text("seeds: [1, 1]\n")
    assert main(["demo", "--config", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == "sampletune: error: seeds: [1, 1] repeats a seed (allowed: distinct seeds)\n"


def test_list_fields_from_flags_and_yaml(tmp_path):
    names = ("features", "rounds", "references", "agent_options")
    args = parse("swift", "search", "--features", "loss", "grad_norm", "--no-references",
                 "--agent-options", "{n_init: 3}")
    _, extra = config_from_args(args, search=names)
    assert extra["search"] == {"features": ["loss", "grad_norm"], "references": False,
                               "agent_options": {"n_init": 3}}
    path = tmp_path / "c.yaml"
    path.write_text("search: {features: [loss, renormed_entropy]}\nrounds: 3\n")
    _, extra = config_from_args(parse("swift", "search", "--config", str(path)), search=names)
    assert extra["search"] == {"features": ["loss", "renormed_entropy"], "rounds": 3}


@pytest.mark.parametrize("content,field", [
    ("features: 3\n", "features"),  # one name is a list of one, as for the flag
    ("search: {features: [loss, 3]}\n", "features"),
    ("search: {seed: 3}\n", "search.seed"),  # the run's seed is the search's
    ("agent_options: {bogus: 1}\n", "agent_options"),
    ("search_cost: -1\n", "search_cost"),
    ("rounds: 7\nsearch: {rounds: 6}\n", "rounds"),
])
def test_bad_search_settings_in_yaml_are_one_line(tmp_path, capsys, content, field):
    path = tmp_path / "c.yaml"
    path.write_text(content)
    assert main(["swift", "search", "--config", str(path), "--train-subset", "200",
                 "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sampletune: error: {field}: ") and err.count("\n") == 1, err


def test_autosampling_settings_from_yaml(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("search: {workers: 0}\n")
    assert main(["autosampling", "search", "--config", str(path), "--quiet"]) == 2
    assert capsys.readouterr().err.startswith("sampletune: error: workers: 0 must be positive")


def test_budget_is_rounded_one_way_for_samplers_and_methods():
    from sampletune.experiments import run_train

    common = dict(dataset="digits", train_subset=400, epochs=1, batch_size=32, budget=0.3,
                  device="cpu")
    # 360 training examples: N * B = 108, whole batches of 32: 96 (3 steps)
    steps = [run_train(RunConfig(**common, **kw), progress=False).history[0]["steps"]
             for kw in ({"sampler": "uniform"}, {"method": "unif-sgd"})]
    assert steps == [3, 3]


def test_help_comes_from_the_field_docs(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "where the linear and cosine schedules end (default: 1e-06)" in " ".join(out.split())
    assert "--nesterov, --no-nesterov" in out


def test_an_identity_that_recorded_the_removed_extra_still_matches():
    from sampletune.rundir import differences

    recorded = {"lr": 0.1, "extra": {}, "train": {"extra": {}, "lr": 0.1}}
    assert differences(recorded, {"lr": 0.1, "train": {"lr": 0.1}}) == []
    assert differences({"extra": {"k": 1}}, {}) == ["extra"]  # it was set: another run


def test_without_noise_the_training_labels_are_the_data_sets_own(tmp_path, capsys):
    """Synthetic label noise is an experiment's choice (``--noise``), never a default: a
    user's own labels are trained on as given."""
    out = tmp_path / "r"
    assert main([*TRAIN, "--out", str(out)]) == 0, capsys.readouterr().err
    assert RunConfig.load(out / "config.yaml").noise == 0.0
    from sampletune.experiments.setup import load_data

    data = load_data(RunConfig.load(out / "config.yaml"))
    assert torch.equal(data.train.y, data.train.clean_y) and not bool(data.train.noisy.any())
