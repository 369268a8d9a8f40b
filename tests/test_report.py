"""``sampletune report RUN_DIR`` on tiny runs of each kind, and ``train --tensorboard``."""

from __future__ import annotations

import json

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


def test_swift_search_report(tmp_path, capsys):
    out = tmp_path / "swift"
    assert main(["--threads", "1", "swift", "search", "--rounds", "1", "--finetune-epochs",
                 "1", *TINY, "--out", str(out)]) == 0
    from sampletune.experiments.swift_pipeline import report_markdown

    expected = report_markdown(json.loads((out / "report.json").read_text()))
    (out / "report.md").unlink()
    rc, text, _ = report(capsys, out)
    assert rc == 0 and expected in text
    assert (out / "report.md").read_text() == expected


def test_budget_table_report(tmp_path, capsys):
    out = tmp_path / "budget"
    assert main(["--threads", "1", "budget-table", "--dataset", "digits", "--budgets", "0.5",
                 "--methods", "unif-sgd", "--lr-schedules", "step", "--seeds", "0", *TINY,
                 "--out", str(out)]) == 0
    table = (out / "table.md").read_text()
    (out / "table.md").unlink()
    rc, text, _ = report(capsys, out)
    assert rc == 0 and table in text and "| unif-sgd |" in text
    assert (out / "table.md").read_text() == table
    assert (out / "report.md").exists()


def test_autosampling_search_report(tmp_path, capsys):
    out = tmp_path / "auto"
    assert main(["--threads", "1", "autosampling", "search", "--warmup", "0", *TINY,
                 "--out", str(out)]) == 0
    rc, text, _ = report(capsys, out)
    assert rc == 0 and "# AutoSampling search (mixture)" in text
    assert "| last epoch (1) |" in text
    assert (out / "convergence.png").stat().st_size > 0


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
