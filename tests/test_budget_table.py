import argparse
import re

import pytest
import torch

from sampletune import io
from sampletune.budget import table
from sampletune.budget.table import GridSpec, aggregate, run_grid, write_report
from sampletune.commands.budget import register
from sampletune.data import RawDataset, register_dataset
from sampletune.errors import ConfigError


def _tiny(kind):
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(3, 1, 6, 6, generator=g) * 2
    y = torch.arange(240) % 3
    x = centers[y] + torch.randn(240, 1, 6, 6, generator=g)
    if kind == "vector":
        x = x.flatten(1)
    return RawDataset(f"tiny-{kind}", x, y, x[:60], y[:60], num_classes=3, kind=kind,
                      hflip=False)


register_dataset("tiny-image")(lambda data_dir, download: _tiny("image"))
register_dataset("tiny-vector")(lambda data_dir, download: _tiny("vector"))

SPEC = GridSpec(dataset=("tiny-image",), budgets=(0.5,), methods=("unif-sgd", "p-sgd"),
                lr_schedules=("linear",), augments=("none",), seeds=(0,), epochs=2,
                batch_size=32)


def test_grid_is_resumable(tmp_path, monkeypatch):
    records = run_grid(SPEC, tmp_path, progress=False)
    assert [(r["method"], r["budget"]) for r in records] == [
        ("SGD", 1.0), ("unif-sgd", 0.5), ("p-sgd", 0.5)]
    assert len(io.read_jsonl(tmp_path / "cells.jsonl")) == 3
    ran = []
    real = table.run_cell
    monkeypatch.setattr(table, "run_cell", lambda c, s, cache: ran.append(c) or real(c, s, cache))
    again = run_grid(SPEC, tmp_path, progress=False)
    assert ran == [] and again == records
    more = run_grid(SPEC.__class__(**{**SPEC.__dict__, "seeds": (0, 1)}), tmp_path,
                    progress=False)
    assert len(more) == 6 and [c["seed"] for c in ran] == [1, 1, 1]


def test_grid_refuses_cells_of_other_data_and_damaged_cells(tmp_path):
    run_grid(SPEC, tmp_path, progress=False)
    path = tmp_path / "cells.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0].replace('"data": "', '"data": "x'), *lines[1:]]) + "\n")
    with pytest.raises(ConfigError, match="^out: .* trained on other data"):
        run_grid(SPEC, tmp_path, progress=False)
    path.write_text("\n".join([*lines, '{"key": "k"}']) + "\n")
    with pytest.raises(ConfigError, match="^out: .* record 3 has a bad or missing"):
        run_grid(SPEC, tmp_path, progress=False)


def test_report_is_shaped_like_tables_2_and_3(tmp_path):
    records = run_grid(SPEC.__class__(**{**SPEC.__dict__, "lr_schedules": ("step", "linear"),
                                         "methods": ("unif-sgd", "sb")}), tmp_path,
                       progress=False)
    md, csv = write_report(records, tmp_path)
    assert "| SGD - SLR (B = 1) |" in md and "| SGD - LLR (B = 1) |" in md
    assert "| Method | B = 0.5 |" in md and "±" in md and "B_SB≈" in md
    assert md.index("SLR") < md.index("LLR")
    assert csv.splitlines()[0].startswith("dataset,augment,lr_schedule,method,budget,seeds,")
    assert len(csv.splitlines()) == 1 + len(aggregate(records)) == 1 + 6
    assert (tmp_path / "entropy.png").stat().st_size > 0
    rows = aggregate(records)
    full = [r for r in rows if r["method"] == "SGD"]
    assert all(r["speedup"] == pytest.approx(0.0) for r in full)


def test_bad_augmentation_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(table, "run_cell", lambda *a: pytest.fail("trained"))
    spec = GridSpec(dataset=("tiny-vector",), augments=("mixup",), seeds=(0,), epochs=5)
    with pytest.raises(ConfigError, match="^augment: 'mixup' needs image data"):
        run_grid(spec, tmp_path, progress=False)
    with pytest.raises(ConfigError, match="^methods: unknown method"):
        GridSpec(methods=("sgd-pro",))


def test_budget_table_command(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["budget-table", "--dataset", "tiny-image", "--budgets", "0.5",
                              "--methods", "unif-sgd", "osgd", "--lr-schedules", "linear",
                              "--augments", "standard", "--full-augments", "standard",
                              "--seeds", "0", "--epochs", "2",
                              "--batch-size", "32", "--device", "cpu", "--out",
                              str(tmp_path), "--quiet"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "| osgd |" in out and "dataset,augment,lr_schedule" in out
    assert "| SGD - LLR (B = 1) | " in out and ",train_acc," in out
    assert (tmp_path / "table.csv").exists() and (tmp_path / "cells.jsonl").exists()


def test_full_rows_only_for_full_augments_and_train_accuracy(tmp_path):
    spec = GridSpec(dataset=("tiny-image",), budgets=(0.5,), methods=("unif-sgd",),
                    lr_schedules=("linear",), augments=("none", "standard"),
                    full_augments=("standard",), seeds=(0,), epochs=2, batch_size=32)
    records = run_grid(spec, tmp_path, progress=False)
    assert [(r["augment"], r["method"]) for r in records] == [
        ("none", "unif-sgd"), ("standard", "SGD"), ("standard", "unif-sgd")]
    assert all(0.0 <= r["train_acc"] <= 1.0 for r in records)
    rows = aggregate(records)
    assert all(0.0 <= r["train_acc"] <= 100.0 for r in rows)
    md, _ = write_report(records, tmp_path)
    assert "| SGD - LLR (B = 1) | - |" in md
    with pytest.raises(ConfigError, match="^full_augments: 'mixup' is not one of the grid's"):
        GridSpec(augments=("none",), full_augments=("mixup",))


def test_budget_table_from_a_yaml_file_with_flags_on_top(tmp_path, capsys):
    from sampletune.cli import main

    out = tmp_path / "bt"
    path = tmp_path / "grid.yaml"
    path.write_text(f"dataset: tiny-image\ngrid: {{budgets: [0.5], methods: [unif-sgd]}}\n"
                    f"lr-schedules: [linear]\nseeds: [0]\nepochs: 3\nbatch_size: 32\n"
                    f"device: cpu\nout: {out}\n")
    assert main(["budget-table", "--config", str(path), "--epochs", "2", "--quiet"]) == 0
    grid = io.read_json(out / "grid.json")
    assert (grid["dataset"], grid["budgets"], grid["methods"], grid["epochs"],
            grid["device"]) == (["tiny-image"], [0.5], ["unif-sgd"], 2, "cpu")  # one name: a list
    assert "| unif-sgd |" in capsys.readouterr().out


@pytest.mark.parametrize("content,message", [
    ("budgets: [0]\n", r"budgets: 0\.0 is outside \(0, 1\]"),
    ("grid: {bogus: 1}\n", r"grid\.bogus: unknown config field \(allowed: dataset, budgets, "),
    ("bogus: 1\n", r"bogus: unknown config field \(allowed: augments, "),
    ("lr_schedules: [nosuch]\n", r"lr_schedules: unknown LR schedule 'nosuch' \(allowed: "),
    ("seeds: 3\n", r"seeds: 3 is not a list"),
    ("seeds: []\n", r"seeds: is empty"),
    ("dataset: [nosuch]\n", r"dataset: unknown data set 'nosuch'"),
    ("full_augments: [mixup]\n", r"full_augments: 'mixup' is not one of the grid's"),
    ("epochs: 5\nwarmup_epochs: 5\n", r"warmup_epochs: 5 is outside \[0, 5\)"),
    ("epochs: 2\nbudgets: [0.2]\n", r"budgets: 0\.2 of 2 epochs is less than the one full "
                                     r"epoch scan-sgd trains"),  # was rounded up to B = 0.5
    ("out: 5\n", r"out: 5 is not a string"),
])
def test_bad_budget_table_settings_are_one_line(tmp_path, capsys, content, message):
    from sampletune.cli import main

    path = tmp_path / "grid.yaml"
    path.write_text(content)
    assert main(["budget-table", "--config", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert re.match(r"sampletune: error: " + message, err), err


def test_a_cell_that_ends_at_the_majority_label_is_marked_collapsed(tmp_path):
    from sampletune.budget.table import collapsed

    spec = GridSpec(dataset=("tiny-image",), budgets=(0.5,), methods=("unif-sgd",),
                    lr_schedules=("linear",), seeds=(0, 1), epochs=2, batch_size=32)
    records = run_grid(spec, tmp_path, progress=False)
    cell = next(r for r in records if r["method"] == "unif-sgd")
    assert 0 < cell["majority_acc"] < 1 and not any(collapsed(r) for r in records)
    # One seed's model predicting the majority label: flagged in the row and the table.
    broken = [dict(r, train_acc=r["majority_acc"], test_acc=0.1)
              if r["method"] == "unif-sgd" and r["seed"] == 1 else r for r in records]
    row = next(r for r in aggregate(broken) if r["method"] == "unif-sgd")
    assert row["collapsed"] == 1
    md, table_csv = write_report(broken, tmp_path / "report")
    assert "collapsed in 1/2" in md and ",collapsed," in table_csv.splitlines()[0]
    assert not collapsed({"train_acc": 0.1})  # cells recorded before majority_acc was kept


def test_a_cell_measure_outside_its_range_is_refused(tmp_path):
    from sampletune import io
    from sampletune.budget.table import check_cells

    cell = {"key": "a", "test_acc": 0.5, "val_acc": 0.5, "wall_time": 1.0, "used_budget": 0.5,
            "entropy": 2.0, "entropy_normalized": 0.9}
    path = tmp_path / "cells.jsonl"
    io.write_jsonl(path, [cell, {**cell, "key": "b", "test_acc": 500.0}])
    with pytest.raises(ConfigError, match=r"^run: .*record 1 has a bad or missing 'test_acc'"):
        check_cells(path, io.read_jsonl(path, "key"), "run")
    io.write_jsonl(path, [cell])
    check_cells(path, io.read_jsonl(path, "key"))
