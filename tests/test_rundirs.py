"""Run directories hold one experiment: same settings resume, others are refused in one line,
--restart starts over, and one process at a time works in a directory."""

import fcntl
import json
import shutil
import subprocess
import sys
import time

import pytest

from sampletune.cli import main
from sampletune.errors import ConfigError
from sampletune.experiments import rundir

TRAIN = ["--threads", "1", "train", "--dataset", "digits", "--train-subset", "300",
         "--model", "mlp", "--epochs", "2", "--lr", "0.05", "--quiet"]


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _summary(out):
    summary = json.loads((out / "summary.json").read_text())
    del summary["config"]["out"]  # as spelled on the command line
    return summary


def test_rerun_with_other_settings_is_refused_naming_the_fields(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TRAIN, "--seed", "0", "--out", str(out)]) == 0
    first = _summary(out)
    other = ["--noise", "0.4", "--lr", "0.01", "--sampler", "oracle"]
    assert main([*TRAIN, *other, "--out", str(out)]) == 2
    err = _error(capsys)
    assert err.startswith(f"sampletune: error: out: {out} holds another experiment "
                          "(differs in: data, lr, noise, sampler)")
    assert "--restart" in err and _summary(out) == first
    # A killed run resumed with another seed or model would mix two experiments.
    for flags, names in ((["--seed", "1"], "data, seed"), (["--model", "smallcnn"], "model")):
        assert main([*TRAIN, *flags, "--out", str(out)]) == 2
        assert f"(differs in: {names})" in _error(capsys)
    assert main([*TRAIN, *other, "--out", str(out), "--restart"]) == 0
    assert _summary(out)["config"]["lr"] == 0.01 and _summary(out) != first


def test_resume_does_not_depend_on_how_out_is_spelled_or_where_it_lies(
        tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*TRAIN, "--out", "runs/a"]) == 0
    first = _summary(tmp_path / "runs" / "a")
    (tmp_path / "link").symlink_to(tmp_path / "runs")
    shutil.copytree(tmp_path / "runs" / "a", tmp_path / "copy")
    for spelling in (str(tmp_path / "runs" / "a") + "/", "link/a", "copy"):
        assert main([*TRAIN, "--out", spelling]) == 0, capsys.readouterr().err
        # A finished run resumes from its last checkpoint: same history, same wall time.
        assert _summary(tmp_path / spelling) == first


def test_the_checkpoint_interval_is_not_part_of_a_runs_identity(tmp_path, capsys):
    """It changes how often a run is saved, not its results: a run resumes under another."""
    out = tmp_path / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    first = _summary(out)
    assert main([*TRAIN, "--checkpoint-every", "0", "--out", str(out)]) == 0, \
        capsys.readouterr().err
    again = _summary(out)
    assert again.pop("config")["checkpoint_every"] == 0
    assert first.pop("config")["checkpoint_every"] == 30 and again == first


def test_a_directory_in_use_is_refused(tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    with open(out / rundir.LOCK_FILE, "a") as other:  # another process's lock
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main([*TRAIN, "--out", str(out)]) == 2
        assert f"out: {out} is in use by another sampletune process" in _error(capsys)
        assert main(["budget-table", "--out", str(out), "--quiet"]) == 2
        assert "is in use" in _error(capsys)
    assert main([*TRAIN, "--out", str(out)]) == 0  # released by the other process


def test_two_processes_on_one_out_do_not_both_run(tmp_path, capsys):
    out = tmp_path / "shared"
    first = subprocess.Popen([sys.executable, "-m", "sampletune.cli", *TRAIN, "--epochs", "500",
                              "--out", str(out)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (out / "identity.json").exists() and first.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert main([*TRAIN, "--epochs", "500", "--out", str(out)]) == 2
        assert "is in use by another sampletune process" in _error(capsys)
    finally:
        first.kill()
        first.communicate()


def test_the_lock_is_released_after_a_run_and_after_an_error(tmp_path):
    identity = {"lr": 0.1}
    with rundir.held(tmp_path / "r", identity):
        pass
    with pytest.raises(ConfigError, match="differs in: lr"):
        rundir.claim(tmp_path / "r", {"lr": 0.2})
    with open(tmp_path / "r" / rundir.LOCK_FILE, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody holds it any more


def test_a_lock_that_is_a_link_is_refused_not_followed(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / rundir.LOCK_FILE).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match=r"^out: cannot create the lock"):
        rundir.claim(run, {"lr": 0.1})
    assert not (tmp_path / "elsewhere").exists()


def test_restart_never_deletes_a_folder_that_is_not_a_run_directory(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main([*TRAIN, "--out", str(tmp_path), "--restart"]) == 2
    assert "is not empty and is not a run directory" in _error(capsys)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_autosampling_search_identity_covers_noise(tmp_path, capsys):
    out = str(tmp_path / "as")
    flags = ["--threads", "1", "autosampling", "search", "--dataset", "digits",
             "--train-subset", "300", "--epochs", "1", "--batch-size", "64", "--workers", "2",
             "--interval", "2", "--warmup", "0", "--quiet", "--out", out]
    assert main(flags) == 0
    assert main([*flags, "--noise", "0.4"]) == 2
    assert "run.noise" in _error(capsys)
    assert main(flags) == 0 and "autosampling" in capsys.readouterr().out
