"""``sampletune report RUN_DIR`` on tiny runs of each kind, and ``train --tensorboard``."""

from __future__ import annotations

import json
import shutil

import pytest

from sampletune.cli import main

TINY = ["--train-subset", "200", "--epochs", "2", "--quiet"]


def report(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["--threads", "1", "report", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(capsys, *argv) -> str:
    rc, _, err = report(capsys, *argv)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, (rc, err)
    assert lines[0].startswith("sampletune: error: run: "), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "train"
    assert main(["--threads", "1", "train", *TINY, "--out", str(out)]) == 0
    return out


def test_train_run_report(train_run, capsys):
    (train_run / "learning_curve.png").unlink()
    rc, out, _ = report(capsys, train_run)
    assert rc == 0
    assert "# uniform: mlp on digits" in out
    assert "| last epoch (1) |" in out and "best validation epoch" in out
    history = [json.loads(line) for line in (train_run / "metrics.jsonl").read_text().splitlines()]
    assert f"{history[-1]['test_acc']:.4f}" in out
    assert (train_run / "report.md").read_text() in out
    assert (train_run / "learning_curve.png").stat().st_size > 0


def test_no_write_writes_nothing(train_run, capsys):
    before = sorted(p.name for p in train_run.iterdir())
    (train_run / "report.md").unlink(missing_ok=True)
    rc, out, _ = report(capsys, train_run, "--no-write")
    assert rc == 0 and "| last epoch (1) |" in out
    assert not (train_run / "report.md").exists()
    assert sorted(p.name for p in train_run.iterdir()) == [n for n in before if n != "report.md"]


@pytest.fixture(scope="module")
def swift_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "swift"
    assert main(["--threads", "1", "swift", "search", "--rounds", "1", "--finetune-epochs",
                 "1", *TINY, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def budget_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "budget"
    assert main(["--threads", "1", "budget-table", "--dataset", "digits", "--budgets", "0.5",
                 "--methods", "unif-sgd", "--lr-schedules", "step", "--seeds", "0", *TINY,
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "auto"
    assert main(["--threads", "1", "autosampling", "search", "--warmup", "0", *TINY,
                 "--out", str(out)]) == 0
    return out


def copy(run, tmp_path):
    """A copy of the shared run ``run`` to change."""
    return shutil.copytree(run, tmp_path / run.name)


def test_swift_search_report(swift_run, tmp_path, capsys):
    out = copy(swift_run, tmp_path)
    from sampletune.experiments.swift_pipeline import report_markdown

    expected = report_markdown(json.loads((out / "report.json").read_text()))
    (out / "report.md").unlink()
    rc, text, _ = report(capsys, out)
    assert rc == 0 and expected in text
    assert (out / "report.md").read_text() == expected


def test_budget_table_report(budget_run, tmp_path, capsys):
    out = copy(budget_run, tmp_path)
    table = (out / "table.md").read_text()
    (out / "table.md").unlink()
    rc, text, _ = report(capsys, out)
    assert rc == 0 and table in text and "| unif-sgd |" in text
    assert (out / "table.md").read_text() == table
    assert (out / "report.md").exists()
    assert "Unfinished" not in text


def test_an_interrupted_budget_table_names_its_missing_cells(budget_run, tmp_path, capsys):
    out = copy(budget_run, tmp_path)
    for name in ("table.md", "table.csv", "entropy.png"):
        (out / name).unlink()
    cells = (out / "cells.jsonl").read_text().splitlines()
    assert len(cells) == 2 and '"method": "SGD"' in cells[0]
    (out / "cells.jsonl").write_text(cells[0] + "\n")  # stopped after the B = 1 cell
    rc, text, _ = report(capsys, out)
    assert rc == 0 and "| Method | B = 1 |\n|---|---|\n" in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert {line.count("|") for line in table} == {3}, table
    assert "**Unfinished:** 1 of the 2 cells of grid.json have no result yet" in text
    assert "digits none step unif-sgd B = 0.5 seed 0." in text
    assert (out / "report.md").read_text() in text
    assert not (out / "entropy.png").exists()
    grid = json.loads((out / "grid.json").read_text())
    (out / "grid.json").write_text(json.dumps({**grid, "budgets": [2.0]}))
    assert "grid.json has a bad budgets" in one_line_error(capsys, out, "--no-write")


def test_autosampling_search_report(auto_run, tmp_path, capsys):
    out = copy(auto_run, tmp_path)
    (out / "convergence.png").unlink()
    rc, text, _ = report(capsys, out)
    assert rc == 0 and "# AutoSampling search (mixture)" in text
    assert "| last epoch (1) |" in text
    assert (out / "convergence.png").stat().st_size > 0


@pytest.mark.parametrize("epochs", [1, 2])
def test_a_killed_autosampling_search_is_no_finished_run(auto_run, tmp_path, capsys, epochs):
    """What a kill leaves: search.json, the curves of the epochs done and a checkpoint; the
    schedule, model and report.json are written when the search ends (2 epochs: killed
    while writing them)."""
    out = copy(auto_run, tmp_path)
    for path in out.iterdir():
        if path.name not in ("search.json", "curves.json", "checkpoint.pt", ".lock"):
            path.unlink()
    curves = json.loads((out / "curves.json").read_text())
    (out / "curves.json").write_text(json.dumps(curves[:epochs]))
    err = one_line_error(capsys, out)
    assert f"holds no finished run (an autosampling search stopped after {epochs} of 2 " \
           "epochs: no report.json" in err
    assert sorted(p.name for p in out.iterdir()) == [".lock", "checkpoint.pt", "curves.json",
                                                    "search.json"]


def test_curves_short_of_a_finished_search_are_refused(auto_run, tmp_path, capsys):
    out = copy(auto_run, tmp_path)
    curves = json.loads((out / "curves.json").read_text())
    (out / "curves.json").write_text(json.dumps(curves[:1]))
    assert "curves.json holds 1 epochs of a search of 2" in one_line_error(capsys, out)


def edit_json(path, change, key=None):
    """Apply ``change`` to the JSON in ``path`` (to its record ``key`` of a list or a
    JSON-lines file)."""
    if path.suffix == ".jsonl":
        records = [json.loads(line) for line in path.read_text().splitlines()]
        change(records[key])
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return
    data = json.loads(path.read_text())
    change(data if key is None else data[key])
    path.write_text(json.dumps(data))


EDITS = [  # (run, file, record, field, value, what the error says)
    ("train", "metrics.jsonl", 0, "val_acc", 1e308, "metrics.jsonl record 0 has val_acc 1e+308 "
     "(allowed: a number in [0, 1])"),
    ("train", "metrics.jsonl", 1, "val_acc", float("nan"), "record 1 has val_acc nan"),
    ("train", "metrics.jsonl", 1, "test_loss", -1.0, "record 1 has test_loss -1.0 (allowed: "
     "a finite number >= 0)"),
    ("train", "summary.json", None, "wall_time", "1e9", "summary.json has wall_time '1e9' "
     "(allowed: a finite number >= 0)"),
    ("train", "summary.json", None, "wall_time", float("inf"), "has wall_time inf"),
    ("train", "summary.json", None, "epochs", "lots", "summary.json has epochs 'lots' "
     "(allowed: an integer >= 1)"),
    ("train", "summary.json", None, "epochs", 1, "metrics.jsonl holds 2 epochs of a run of 1"),
    ("train", "summary.json", "config", "epochs", True, "summary.json config has epochs True"),
    ("auto", "curves.json", 1, "val_acc", -0.5, "curves.json record 1 has val_acc -0.5"),
    ("auto", "curves.json", 0, "worker_epochs", 2.5, "record 0 has worker_epochs 2.5 "
     "(allowed: an integer >= 1)"),
    ("auto", "curves.json", 1, "time", None, "curves.json record 1 has no time"),
    ("auto", "curves.json", 1, "epoch", 0, "curves.json record 1 has epoch 0"),
    ("auto", "search.json", "train", "epochs", "2", "search.json train has epochs '2'"),
    ("swift", "report.json", "uniform", "test_acc", float("nan"), "report.json uniform has "
     "test_acc nan (allowed: a number in [0, 1])"),
    ("swift", "report.json", "chosen", "val_acc", None, "report.json chosen has no val_acc"),
    ("swift", "report.json", "cost", "search", -1.0, "report.json cost has search -1.0"),
    ("swift", "report.json", "search", "rounds", True, "report.json search has rounds True "
     "(allowed: an integer >= 0)"),
    ("swift", "report.json", "uniform", "wall_time", "1e9", "uniform has wall_time '1e9'"),
]


@pytest.mark.parametrize("kind, name, key, field, value, says", EDITS)
def test_edited_metrics_are_refused_naming_the_field(request, tmp_path, capsys, kind, name, key,
                                                     field, value, says):
    out = copy(request.getfixturevalue(f"{kind}_run"), tmp_path)
    edit_json(out / name, lambda r: r.update({field: value}), key)
    err = one_line_error(capsys, out, "--no-write")
    assert says in err and err.count("(allowed:") == 1, err
    assert "Error" not in err, err  # the field, not an exception's name


def test_what_a_folder_of_no_kind_has_and_lacks(tmp_path, swift_run, auto_run, capsys):
    assert "(none of search.json, curves.json, report.json" in one_line_error(capsys, tmp_path)
    assert "search.json and trials.jsonl: the trials of a swift search" in one_line_error(
        capsys, swift_run / "search")
    shutil.copy(auto_run / "search.json", tmp_path)
    assert "(search.json but no curves.json)" in one_line_error(capsys, tmp_path)
    (tmp_path / "metrics.jsonl").write_text("")
    assert "(search.json but no curves.json; metrics.jsonl but no summary.json)" in \
        one_line_error(capsys, tmp_path)
    assert "run: is an empty path" in one_line_error(capsys, "")


def test_missing_unknown_and_damaged_run_directories_are_one_line(tmp_path, train_run, capsys):
    one_line_error(capsys, tmp_path / "nosuch")
    (tmp_path / "file").write_text("x")
    one_line_error(capsys, tmp_path / "file")
    (tmp_path / "empty").mkdir()
    assert "holds no finished run" in one_line_error(capsys, tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "summary.json").write_bytes(b"\x00\xff not json")
    (bad / "metrics.jsonl").write_text('{"epoch": 0}\n')
    one_line_error(capsys, bad)
    (bad / "summary.json").write_text((train_run / "summary.json").read_text())
    one_line_error(capsys, bad)  # a record without train_loss
    (bad / "metrics.jsonl").write_text("garbage\n")
    one_line_error(capsys, bad)
    (bad / "metrics.jsonl").write_text((train_run / "metrics.jsonl").read_text())
    (bad / "summary.json").write_text("[1, 2]")
    one_line_error(capsys, bad)
    for name, content in (("report.json", '{"search": 3}'), ("report.json", "{}"),
                          ("cells.jsonl", '{"key": "a"}\n'), ("search.json", "[]")):
        kind = tmp_path / f"bad-{name}-{len(content)}"
        kind.mkdir()
        (kind / name).write_text(content)
        if name == "search.json":
            (kind / "curves.json").write_text('[{"epoch": 0}]')
        one_line_error(capsys, kind)
    deep = tmp_path / "deep"  # nested past Python's recursion limit
    deep.mkdir()
    (deep / "summary.json").write_text("[" * 100_000 + "]" * 100_000)
    (deep / "metrics.jsonl").write_text((train_run / "metrics.jsonl").read_text())
    one_line_error(capsys, deep)
    (deep / "summary.json").write_text((train_run / "summary.json").read_text())
    (deep / "metrics.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    one_line_error(capsys, deep)
    endless = tmp_path / "endless"  # a float where an integer count belongs
    endless.mkdir()
    (endless / "search.json").write_text('{"search": {"exploration": "pbt"}}')
    (endless / "curves.json").write_text(
        '[{"epoch": 0, "worker_epochs": Infinity, "time": 1.0, "val_acc": 0.5}]')
    one_line_error(capsys, endless)


def test_a_report_it_cannot_write_is_one_line(tmp_path, train_run, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(train_run, run)
    (run / "report.md").unlink(missing_ok=True)
    (run / "report.md").mkdir()
    assert "cannot write the report" in one_line_error(capsys, run)


def test_tensorboard_events_hold_the_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb-run"
    assert main(["--threads", "1", "train", *TINY, "--out", str(out), "--tensorboard"]) == 0
    assert list((out / "tb").glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(out / "tb"))
    acc.Reload()
    assert {"train/loss", "val/loss", "val/acc", "test/loss", "test/acc", "lr"} <= set(
        acc.Tags()["scalars"])
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    events = acc.Scalars("val/acc")
    assert [e.step for e in events] == [1, 2]
    assert [e.value for e in events] == pytest.approx([r["val_acc"] for r in history])
    # a rerun (the finished run resumes) replaces the events instead of repeating them
    assert main(["--threads", "1", "train", *TINY, "--out", str(out), "--tensorboard"]) == 0
    acc = EventAccumulator(str(out / "tb"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2]


def test_tensorboard_needs_a_run_directory_and_the_package(tmp_path, capsys, monkeypatch):
    capsys.readouterr()
    assert main(["--threads", "1", "train", *TINY, "--tensorboard"]) == 2
    assert capsys.readouterr().err.startswith("sampletune: error: tensorboard: needs a run")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    assert main(["--threads", "1", "train", *TINY, "--out", str(tmp_path / "r"),
                 "--tensorboard"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sampletune: error: tensorboard: ")
    assert "pip install" in err[0]
    assert not (tmp_path / "r").exists()


def test_a_reader_that_goes_away_is_no_traceback(train_run):
    """``sampletune report RUN --no-write | head -0``: the pipe closes before we print."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "sampletune.cli", "--threads", "1",
                             "report", str(train_run), "--no-write"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == 141 and "Traceback" not in err and "BrokenPipe" not in err, err
