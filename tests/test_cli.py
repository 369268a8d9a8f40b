"""The `sampletune train` paths that join the families: methods, augmentation, sampler files."""

import json

import pytest

from sampletune.cli import main
from sampletune.errors import ConfigError
from sampletune.experiments import RunConfig

COMMON = ["--threads", "1", "train", "--dataset", "digits", "--train-subset", "400",
          "--model", "mlp", "--lr", "0.05", "--quiet"]


def test_train_with_a_budgeted_method(tmp_path):
    out = tmp_path / "psgd"
    assert main([*COMMON, "--method", "p-sgd", "--budget", "0.3", "--epochs", "4",
                 "--lr-schedule", "step", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "p-sgd" and summary["budget"] == 0.3
    assert 0 < summary["used_budget"] <= 0.3 + 1e-9
    assert summary["config"]["milestones"] == pytest.approx([1 / 3, 2 / 3])


def test_train_with_a_swift_sampler_file(tmp_path, capsys):
    from sampletune.experiments.swift_pipeline import run_swift
    from sampletune.swift.search import SearchConfig

    run = RunConfig(dataset="digits", train_subset=400, model="mlp", epochs=2, lr=0.05,
                    device="cpu", out=str(tmp_path / "ss"))
    run_swift(run, SearchConfig(rounds=2, finetune_epochs=1, agent="random"),
              search_cost=0.5, progress=False)
    sampler_file = str(tmp_path / "ss" / "sampler.json")
    assert main([*COMMON, "--sampler", "swift", "--weights", sampler_file, "--epochs", "2"]) == 0
    assert "swift on digits" in capsys.readouterr().out
    # A sampler fitted on another training split is refused, not silently misapplied.
    other_split = [("300" if a == "400" else a) for a in COMMON]
    assert main([*other_split, "--sampler", "swift",
                 "--weights", sampler_file, "--epochs", "1"]) == 2
    assert "weights: the sampler file covers 360 examples" in capsys.readouterr().err
    # Same size, another split (seed 1): refused too.
    assert main([*COMMON, "--seed", "1", "--sampler", "swift", "--weights", sampler_file,
                 "--epochs", "1"]) == 2
    assert "of another training split" in capsys.readouterr().err


def test_augmentation_on_non_image_data_is_a_config_error(capsys):
    assert main(["train", "--dataset", "mnist1d", "--augment", "mixup", "--quiet"]) == 2
    assert capsys.readouterr().err.startswith("sampletune: error: augment: ")


@pytest.mark.parametrize("values,field", [
    ({"epochs": 1.5}, "epochs"), ({"lr": "fast"}, "lr"), ({"nesterov": 1}, "nesterov"),
    ({"milestones": 0.5}, "milestones"), ({"dataset": None}, "dataset"), ({"bogus": 1}, "bogus"),
])
def test_config_file_values_are_type_checked(values, field):
    with pytest.raises(ConfigError, match=f"^{field}: "):
        RunConfig.from_dict(values)


def test_config_round_trips_through_its_dict():
    cfg = RunConfig(method="sb", budget=0.5, milestones=(0.25, 0.5), gamma=0.5, eval_every=2)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_python_dash_m_sampletune_runs_the_command_line():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "sampletune", "report", ""],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "run: is an empty path" in done.stderr


def test_commands_import_torchvision_and_scipy_stats_only_where_they_use_them():
    """torchvision (with torch._dynamo) and scipy.stats cost a new process about 1.8 s
    (benchmarks/results/import_time.md), more than a training of a small table."""
    import subprocess
    import sys

    code = ("import sys; import sampletune.cli as cli, sampletune.experiments.swift_pipeline; "
            "cli.build_parser(); "
            "print(' '.join(m for m in ('torchvision', 'torch._dynamo', 'scipy.stats') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert out.strip() == ""
