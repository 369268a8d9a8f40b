import os
import stat

import pytest

from sampletune import io
from sampletune.errors import ConfigError


def test_append_after_a_torn_line_keeps_every_later_record(tmp_path):
    path = tmp_path / "trials.jsonl"
    io.append_jsonl(path, {"trial": 0})
    with open(path, "a") as fh:  # a kill in the middle of writing trial 1
        fh.write('{"trial": 1, "x": [0.1')
    assert io.read_jsonl(path) == [{"trial": 0}]
    io.append_jsonl(path, {"trial": 1})
    io.append_jsonl(path, {"trial": 2})
    assert io.read_jsonl(path) == [{"trial": 0}, {"trial": 1}, {"trial": 2}]


def test_atomic_writes_leave_no_temp_files(tmp_path):
    io.write_json(tmp_path / "a.json", {"k": [1, 2]})
    io.save_npz(tmp_path / "b.npz", x=[1, 2, 3])
    assert io.read_json(tmp_path / "a.json") == {"k": [1, 2]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.npz"]


def _journal(path, lines):
    path.write_text("".join(line + "\n" for line in lines))


@pytest.mark.parametrize("lines,problem", [
    (['{"trial": 0}', "garbage", '{"trial": 1}'], "line 2 is not a JSON record"),
    (['{"trial": 0}', "[1, 2]"], "line 2 is not a JSON record"),
    (['{"trial": 0}', '{"trial": 0}'], "line 2 has a missing or repeated 'trial'"),
    (['{"trial": 0}', '{"x": 1}'], "line 2 has a missing or repeated 'trial'"),
    (['{"trial": 0}', '{"trial": 2}'], "line 2 has trial 2 where 1 belongs"),
    (['{"trial": [0]}'], "line 1 has a missing or repeated 'trial'"),
])
def test_a_damaged_journal_is_refused_naming_file_and_line(tmp_path, lines, problem):
    path = tmp_path / "trials.jsonl"
    _journal(path, lines)
    with pytest.raises(ConfigError, match=f"^out: {path} {problem}"):
        io.read_jsonl(path, "trial", sequential=True)


def test_a_search_never_appends_after_a_corrupt_trial(tmp_path):
    from sampletune.swift.search import load_trials

    _journal(tmp_path / "trials.jsonl", ['{"trial": 0}', '{"trial": 1', '{"trial": 2}'])
    with pytest.raises(ConfigError, match="trials.jsonl line 2 is not a JSON record"):
        load_trials(tmp_path)
    trial = {"trial": 0, "x": [0.5, 0.5, 0.5], "params": {"e": [0, 1], "v": [0, 1], "c": [1]},
             "score": 0.5, "seconds": 1.0}
    for bad in ({"x": ["a"]}, {"params": {"e": [0]}}, {"score": "high"}, {"x": None},
                {"score": float("nan")}, {"seconds": float("inf")}):
        io.write_jsonl(tmp_path / "trials.jsonl", [{**trial, **bad}])
        with pytest.raises(ConfigError, match="^out: .*trials.jsonl (trial|record) 0 has (a )?bad"):
            load_trials(tmp_path)
    io.write_jsonl(tmp_path / "trials.jsonl", [trial])
    assert load_trials(tmp_path) == [{**trial, "id": 0, "state": "done"}]  # earlier format


def test_a_journal_score_outside_what_the_objective_returns_is_refused(tmp_path):
    from sampletune.swift.params import SwiftSpace
    from sampletune.swift.trials import Journal

    trial = {"trial": 0, "x": [0.5, 0.5, 0.5], "params": {"e": [0, 1], "v": [0, 1], "c": [1]},
             "score": 5.0, "seconds": 1.0}
    io.write_jsonl(tmp_path / "trials.jsonl", [trial])
    space = SwiftSpace(1, 1)
    assert Journal(tmp_path / "trials.jsonl", space).finished[0]["score"] == 5.0
    with pytest.raises(ConfigError, match="^out: .*trial 0 has a bad or missing"):
        Journal(tmp_path / "trials.jsonl", space, score_bounds=(0.0, 1.0))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 5.0, -0.1, True, "0.5", None])
def test_journal_measures_out_of_their_range_are_refused(tmp_path, value):
    path = tmp_path / "cells.jsonl"
    io.write_jsonl(path, [{"key": "a", "test_acc": 0.5}, {"key": "b", "test_acc": value}])
    with pytest.raises(ConfigError, match=r"^out: .*cells.jsonl record 1 has a bad or missing "
                                          r"'test_acc'"):
        io.check_records(path, io.read_jsonl(path, "key"), {"test_acc": (float, int)},
                         bounds={"test_acc": (0.0, 1.0)})
    io.write_jsonl(path, [{"key": "a", "test_acc": 0.5}, {"key": "b", "test_acc": 1}])
    io.check_records(path, io.read_jsonl(path, "key"), {"test_acc": (float, int)},
                     bounds={"test_acc": (0.0, 1.0)})


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        io.write_json(tmp_path / "a.json", {})
        io.save_torch(tmp_path / "b.pt", {})
        io.append_jsonl(tmp_path / "c.jsonl", {})
    finally:
        os.umask(old)
    for name in ("a.json", "b.pt", "c.jsonl"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


@pytest.mark.parametrize("at_write", [1, 2, 3, 4])
def test_an_interrupt_while_saving_a_torch_file_stays_an_interrupt(tmp_path, monkeypatch,
                                                                   at_write):
    """A Ctrl-C that lands in the ``at_write``-th Python ``write`` of a save: torch's zip
    writer turned it into a RuntimeError (a crash, to the CLI) when it wrote the file
    itself. Now the save either finishes or stops as an interrupt, and the file on disk is
    the old one or the new one, whole."""
    import torch

    path = tmp_path / "checkpoint.pt"
    io.save_torch(path, {"step": torch.tensor(1)})
    real_fdopen = os.fdopen

    class Interrupted:
        def __init__(self, fh):
            self.fh, self.calls = fh, 0

        def write(self, data):
            self.calls += 1
            if self.calls == at_write:
                raise KeyboardInterrupt
            return self.fh.write(data)

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: Interrupted(real_fdopen(*a, **k)))
    try:
        io.save_torch(path, {"step": torch.tensor(2)})
        expected = 2
    except KeyboardInterrupt:
        expected = 1
    monkeypatch.undo()
    assert int(io.load_torch(path, "checkpoint")["step"]) == expected
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
