"""Every `sampletune` subcommand on bad input: exit status 2 and exactly one stderr line
``sampletune: error: FIELD: problem``, before any training; never a traceback.

Explicit regressions first (each names a defect a tester found), then property-based
fuzzing with hypothesis over every numeric flag, data files, config files and YAML.
Everything runs in-process through ``main([...])``; nothing here trains more than one tiny
epoch.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sampletune.cli import build_parser, main

ERROR_LINE = re.compile(r"^sampletune: error: [a-z_.\-]+: .+")
FUZZ = settings(max_examples=15, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
TINY = ["--train-subset", "200", "--epochs", "1", "--quiet"]


@pytest.fixture(scope="module", autouse=True)
def _in_a_scratch_folder(tmp_path_factory):
    """Commands that get far enough to write (default --out runs/...) write there."""
    import os

    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(here)


def run(argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)`` in-process: (exit status, stdout, stderr). A traceback propagates."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(["--threads", "1", *argv])
        except SystemExit as exc:  # --help and the like
            rc = exc.code
    text = out.getvalue() + err.getvalue()
    assert "Traceback" not in text, text
    return rc, out.getvalue(), err.getvalue()


def refused(argv: list[str], field: str | None = None) -> str:
    """Assert ``argv`` is refused with one error line (naming ``field``); return the line."""
    rc, _, err = run(argv)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, (rc, err)
    assert ERROR_LINE.match(lines[0]), lines[0]
    if field is not None:
        assert lines[0].startswith(f"sampletune: error: {field}: "), lines[0]
    return lines[0]


def npz(tmp: Path, name: str = "d.npz", **arrays) -> str:
    path = tmp / name
    np.savez(path, **arrays)
    return str(path)


def blobs(n: int, k: int, d: int = 4, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    return {"x": (rng.normal(size=(n, d)) + y[:, None]).astype(np.float32), "y": y}


# ---------------------------------------------------------------------------------------------
# the subcommands and what a minimal valid invocation of each looks like


def subcommands(parser: argparse.ArgumentParser | None = None, prefix=()) -> set[tuple]:
    """Every leaf subcommand of the parser, as a tuple of words."""
    parser = parser or build_parser()
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= subcommands(sub, (*prefix, name)) or {(*prefix, name)}
    return found


# Each leaf subcommand with the arguments it needs to get past argparse (files that do not
# exist are fine: they are refused with one line too).
BASE = {
    ("train",): ["train", *TINY],
    ("demo",): ["demo", "--quiet"],
    ("swift", "search"): ["swift", "search", "--rounds", "1", *TINY],
    ("swift", "verify"): ["swift", "verify", "--run", "no-such-run"],
    ("autosampling", "search"): ["autosampling", "search", "--warmup", "0", *TINY],
    ("autosampling", "replay"): ["autosampling", "replay", "--schedule", "no-such.npz", *TINY],
    ("autosampling", "plot"): ["autosampling", "plot", "no-such-run"],
    ("budget-table",): ["budget-table", "--quiet"],
    ("report",): ["report", "no-such-run"],
}


def test_every_subcommand_is_covered_by_the_fuzz_table():
    assert subcommands() == set(BASE)


# ---------------------------------------------------------------------------------------------
# argparse's own errors: one line naming the flag, from every subcommand


@pytest.mark.parametrize("cmd", sorted(BASE))
@pytest.mark.parametrize("extra,field", [
    (["--no-such-flag"], "arguments"),
    (["--quiet", "--quiet", "stray"], "arguments"),
])
def test_unknown_arguments_are_one_line(cmd, extra, field):
    refused([*BASE[cmd], *extra], field)


@pytest.mark.parametrize("argv,field", [
    ([], "command"),
    (["nosuch"], "command"),
    (["swift"], "command"),
    (["swift", "nosuch"], "command"),
    (["autosampling"], "command"),
    (["train", "--epochs", "x"], "epochs"),
    (["train", "--epochs"], "epochs"),
    (["train", "--noise-type", "x"], "noise_type"),
    (["train", "--noise-type", "pairflip"], "noise_type"),  # no effect at --noise 0
    (["train", "--val-noise"], "val_noise"),
    (["train", "--method", "scan-sgd", "--budget", "0.1", "--epochs", "3"], "budget"),
    (["train", "--lr", "fast"], "lr"),
    (["train", "--milestones"], "milestones"),
    (["train", "--milestones=--"], "milestones"),
    (["swift", "search", "--rounds=--"], "rounds"),
    (["autosampling", "search", "--warmup"], "warmup"),
    (["autosampling", "replay"], "schedule"),
    (["autosampling", "plot"], "runs"),
    (["swift", "verify"], "run"),
    (["report"], "run"),
    (["swift", "search", "--agent", "nosuch"], "agent"),
    (["budget-table", "--methods", "nosuch"], "methods"),
    (["budget-table", "--budgets", "nan"], "budgets"),
    (["demo", "--seeds", "x"], "seeds"),
    (["--threads", "x", "train"], "threads"),
])
def test_argparse_errors_are_one_line_naming_the_flag(argv, field):
    refused(argv, field)


def test_help_still_works():
    rc, out, _ = run(["train", "--help"])
    assert rc == 0 and "--batch-size" in out


# ---------------------------------------------------------------------------------------------
# defect 1: labels are validated at load (the 10**7-label hang), for every source


def test_npz_with_a_huge_label_is_refused_at_once(tmp_path):
    a = blobs(50, 2)
    a["y"][0] = 10**7
    line = refused(["train", "--dataset", "npz", "--data-dir", npz(tmp_path, **a), *TINY],
                   "npz.y")
    assert "10000000" in line


@pytest.mark.parametrize("change,field", [
    (lambda a: a.update(y=a["y"] * 2), "npz.y"),  # classes 1, 3, ... never appear
    (lambda a: a.update(y=a["y"].astype(np.float64) + 0.5), "npz.y"),  # not integral
    (lambda a: a.update(y=a["y"] - 1), "npz.y"),  # negative
    (lambda a: a.update(y=np.zeros(50, np.int64)), "npz.y"),  # one class
    (lambda a: a.update(y=a["y"][:, None]), "npz.y"),  # (N, 1)
    (lambda a: a.update(x=np.full((50, 4), np.nan)), "npz.x"),
    (lambda a: a.update(x=a["x"].astype(np.complex64)), "npz.x"),
    (lambda a: a.update(x=np.zeros((50, 0), np.float32)), "npz.x"),
    (lambda a: a.update(x=a["x"][:40]), "npz.y"),
    (lambda a: a.update(x_test=a["x"][:10], y_test=a["y"][:10] + 5), "npz.y_test"),
    (lambda a: a.update(x_test=np.full((10, 4), np.inf), y_test=a["y"][:10]), "npz.x_test"),
    (lambda a: a.update(x_test=a["x"][:10, :3], y_test=a["y"][:10]), "npz.x_test"),
])
def test_npz_labels_and_inputs_are_validated(tmp_path, change, field):
    a = blobs(50, 5)
    change(a)
    refused(["train", "--dataset", "npz", "--data-dir", npz(tmp_path, **a), *TINY], field)


@pytest.mark.parametrize("model", ["smallcnn", "tv:vit_b_16"])
def test_a_model_that_cannot_take_the_inputs_is_refused_before_training(tmp_path, model):
    a = blobs(60, 3)
    a["x"] = np.random.default_rng(0).random((60, 1, 2, 2)).astype(np.float32)
    refused(["train", "--dataset", "npz", "--data-dir", npz(tmp_path, **a), "--model", model,
             "--batch-size", "8", *TINY[2:]], "model")


def test_npz_float_labels_with_integral_values_train(tmp_path):
    a = blobs(300, 3)
    a["y"] = a["y"].astype(np.float32)
    rc, out, err = run(["train", "--dataset", "npz", "--data-dir", npz(tmp_path, **a),
                        "--epochs", "1", "--quiet", "--batch-size", "32"])
    assert rc == 0, err


def test_registered_sources_are_validated_too():
    import torch

    from sampletune.data import RawDataset, load_dataset, register_dataset
    from sampletune.errors import ConfigError

    @register_dataset("test-bad-labels")
    def _bad(data_dir, download):
        x = torch.zeros(20, 3)
        return RawDataset("bad", x, torch.arange(20) % 3, x, torch.full((20,), 7), 3)

    with pytest.raises(ConfigError, match=r"^dataset\.y_test: "):
        load_dataset("test-bad-labels")


@pytest.mark.parametrize("rows", [1, 2, 5, 12])
def test_data_sets_too_small_to_split_are_refused(tmp_path, rows):
    refused(["train", "--dataset", "npz", "--data-dir", npz(tmp_path, **blobs(rows, 2)),
             "--epochs", "1", "--quiet"])


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04trunc", b"\x93NUMPY garbage",
                                     b"hello world\n"])
def test_unreadable_npz_files_are_one_line(tmp_path, content):
    path = tmp_path / "d.npz"
    path.write_bytes(content)
    refused(["train", "--dataset", "npz", "--data-dir", str(path), *TINY], "data_dir")


def test_npy_and_truncated_npz_are_one_line(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    refused(["train", "--dataset", "npz", "--data-dir", str(tmp_path / "a.npy"), *TINY],
            "data_dir")
    whole = Path(npz(tmp_path, **blobs(50, 2))).read_bytes()
    (tmp_path / "t.npz").write_bytes(whole[: len(whole) // 2])
    refused(["train", "--dataset", "npz", "--data-dir", str(tmp_path / "t.npz"), *TINY],
            "data_dir")


def test_a_non_image_in_an_imagefolder_is_one_line(tmp_path):
    for c in ("a", "b"):
        (tmp_path / "train" / c).mkdir(parents=True)
        (tmp_path / "train" / c / "x.png").write_bytes(b"not an image")
    line = refused(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path), *TINY],
                   "data_dir")
    assert "x.png" in line


def test_a_corrupt_mnist1d_cache_is_one_line(tmp_path):
    from sampletune.data import load_dataset

    load_dataset("mnist1d", tmp_path)
    (cache,) = tmp_path.glob("mnist1d-*.npz")
    cache.write_bytes(b"PK\x03\x04 truncated")
    refused(["train", "--dataset", "mnist1d", "--data-dir", str(tmp_path), *TINY], "data_dir")


def test_a_data_dir_for_a_source_that_ignores_it_is_refused(tmp_path):
    refused(["train", "--data-dir", "/etc/passwd", *TINY], "data_dir")
    refused(["train", "--dataset", "mnist1d", "--data-dir", "/etc/passwd", *TINY], "data_dir")
    refused(["train", "--download", *TINY], "download")


# ---------------------------------------------------------------------------------------------
# defect 2: tracebacks on ordinary mistakes


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:7", "cuda:x", "mps", "tpu",
                                    "cpu:3", "", "meta"])
def test_an_unavailable_device_is_refused_before_any_work(device):
    import torch

    if device.startswith("cuda") and torch.cuda.is_available() and device != "cuda:x":
        pytest.skip("this machine has CUDA")
    for cmd in (("train",), ("swift", "search"), ("autosampling", "search"),
                ("budget-table",)):
        refused([*BASE[cmd], "--device", device], "device")


@pytest.mark.parametrize("seed", ["99999999999999999999", "-1", str(2**32)])
def test_seeds_are_bounded(seed):
    refused(["train", *TINY, "--seed", seed], "seed")
    refused(["budget-table", "--seeds", "0", seed, "--quiet"], "seeds")
    refused(["demo", "--seeds", seed, "--quiet"], "seeds")


def test_the_largest_seed_trains():
    rc, _, err = run(["train", *TINY, "--seed", str(2**32 - 1), "--method", "sb",
                      "--budget", "0.5"])
    assert rc == 0, err


def test_out_naming_an_existing_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    for cmd in (("train",), ("swift", "search"), ("autosampling", "search"),
                ("autosampling", "replay"), ("budget-table",), ("demo",)):
        refused([*BASE[cmd], "--out", str(f)], "out")
    refused(["autosampling", "plot", str(tmp_path), "--output", str(tmp_path)], "output")
    for cmd in (("train",), ("budget-table",), ("demo",)):  # a file where a folder must be
        refused([*BASE[cmd], "--out", str(f / "run")], "out")


def test_plot_with_broken_run_files_or_an_unknown_key(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "search.json").write_text('{"search": {"exploration": "mixture"}}')
    (run_dir / "curves.json").write_text('[{"epoch": 0, "test_acc": 0.5}]')
    refused(["autosampling", "plot", str(run_dir), "--key", "nosuch"], "key")
    (run_dir / "curves.json").write_text("{not json")
    refused(["autosampling", "plot", str(run_dir)], "runs")
    (run_dir / "curves.json").write_text('[{"epoch": 0, "test_acc": 0.5}]')
    (run_dir / "search.json").write_text("[]")
    refused(["autosampling", "plot", str(run_dir)], "runs")


def test_linear_schedule_below_its_end_point_names_lr():
    refused(["train", *TINY, "--lr-schedule", "linear", "--lr", "1e-7"], "lr")


@pytest.mark.parametrize("content,field", [
    (b"\x00\xff\xfe binary", "config"),
    (b"- 1\n- 2\n", "config"),
    (b"just a string\n", "config"),
    (b"lr: [1, 2]\n", "lr"),
    (b"lr: abc\n", "lr"),
    (b"lr: .inf\n", "lr"),
    (b"epochs: 2.5\n", "epochs"),
    (b"bogus_key: 1\n", "bogus_key"),
    (b"1: 2\n", "config"),
    (b"Weird Key: 2\n", "config"),
    (b"seed: 99999999999999999999\n", "seed"),
    (b"a: [\n", "config"),
])
def test_bad_config_files_are_one_line(tmp_path, content, field):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    refused(["train", "--config", str(path), "--train-subset", "200", "--quiet"], field)


def test_a_directory_as_config_is_one_line(tmp_path):
    refused(["train", "--config", str(tmp_path), *TINY], "config")


def test_yaml_numbers_pyyaml_reads_as_strings_are_accepted(tmp_path):
    from sampletune.experiments import RunConfig

    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-3\nweight_decay: 5e-4\n")
    assert RunConfig.load(path).lr == 1e-3


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04", b"\x93NUMPY\x01\x00garbage"])
def test_a_bad_schedule_file_is_one_line(tmp_path, content):
    path = tmp_path / "schedule.npz"
    path.write_bytes(content)
    refused(["autosampling", "replay", "--schedule", str(path), *TINY], "schedule")


# ---------------------------------------------------------------------------------------------
# defect 3 and 4: nonsense refused up front, naming the field


@pytest.mark.parametrize("args,field", [
    (["--weight-decay", "inf"], "weight_decay"),
    (["--weight-decay", "1"], "weight_decay"),
    (["--lr", "inf"], "lr"),
    (["--lr", "1e30"], "lr"),
    (["--lr", "-0.1"], "lr"),
    (["--lr", "nan"], "lr"),
    (["--momentum", "nan"], "momentum"),
    (["--momentum", "1"], "momentum"),
    (["--budget", "inf"], "budget"),
    (["--budget", "0"], "budget"),
    (["--noise=-inf"], "noise"),
    (["--noise", "1"], "noise"),
    (["--val-fraction", "0.001"], "val_fraction"),
    (["--val-fraction", "0.999"], "val_fraction"),
    (["--val-fraction", "0"], "val_fraction"),
    (["--milestones", "0.9", "0.1"], "milestones"),
    (["--milestones", "inf"], "milestones"),
    (["--batch-size", "1000000"], "batch_size"),
    (["--batch-size", "0"], "batch_size"),
    (["--train-subset", "99999999"], "train_subset"),
    (["--train-subset", "0"], "train_subset"),
    (["--train-subset=-5"], "train_subset"),
    (["--epochs", "0"], "epochs"),
    (["--epochs=-1"], "epochs"),
    (["--epochs", "10000000000"], "epochs"),
    (["--model", "nosuch"], "model"),
    (["--dataset", "nosuch"], "dataset"),
])
def test_train_values_are_checked_up_front(args, field):
    line = refused(["train", *TINY, "--lr-schedule", "step", *args], field)
    if args == ["--train-subset", "99999999"]:
        assert "1438" in line  # the actual size of digits' training set


def test_sampler_and_method_together_are_refused():
    refused(["train", *TINY, "--sampler", "shuffle", "--method", "p-sgd"], "sampler")
    refused(["train", *TINY, "--weights", "w.npy"], "weights")
    refused(["train", *TINY, "--sampler", "nosuch"], "sampler")


def test_threads_are_bounded():
    refused(["--threads", "0", "train", *TINY], "threads")
    refused(["--threads", "100000000", "train", *TINY], "threads")


def test_autosampling_warmup_must_leave_epochs_to_explore():
    refused(["autosampling", "search", *TINY[:2], "--epochs", "2", "--warmup", "50",
             "--quiet"], "warmup")


@pytest.mark.parametrize("argv,field", [
    (["swift", "search", *TINY, "--finetune-lr-scale", "inf"], "finetune_lr_scale"),
    (["swift", "search", *TINY, "--lr", "5", "--finetune-lr-scale", "3"],
     "finetune_lr_scale"),
    (["swift", "search", *TINY, "--search-cost", "nan"], "search_cost"),
    (["swift", "search", *TINY, "--features", "loss", "nosuch"], "features"),
    (["swift", "search", *TINY, "--segments", "1000000"], "segments"),
    (["swift", "search", *TINY, "--rounds", "0"], "rounds"),
    (["swift", "search", *TINY, "--parallel-trials", "0"], "parallel_trials"),
    (["swift", "search", *TINY, "--parallel-trials", "100000"], "parallel_trials"),
    (["swift", "search", *TINY, "--gpus-per-trial", "0.5"], "gpus_per_trial"),
    (["swift", "search", *TINY, "--engine", "ray", "--gpus-per-trial", "2.5"],
     "gpus_per_trial"),
    (["swift", "search", *TINY, "--engine", "process", "--ray-address", "auto"],
     "ray_address"),
    (["swift", "verify", "--run", "x", "--k", "1"], "k"),
    (["autosampling", "search", *TINY, "--beta", "inf"], "beta"),
    (["autosampling", "search", *TINY, "--workers", "100000000"], "workers"),
    (["autosampling", "search", *TINY, "--workers", "0"], "workers"),
    (["autosampling", "search", *TINY, "--stages", "100000000000"], "stages"),
    (["budget-table", "--quiet", "--lr", "inf"], "lr"),
    (["budget-table", "--quiet", "--weight-decay", "inf"], "weight_decay"),
    (["budget-table", "--quiet", "--dataset", "nosuch"], "dataset"),
    (["budget-table", "--quiet", "--model", "nosuch"], "model"),
    (["budget-table", "--quiet", "--epochs", "0"], "epochs"),
    (["budget-table", "--quiet", "--train-subset", "99999999"], "train_subset"),
    (["budget-table", "--quiet", "--warmup-epochs", "-1"], "warmup_epochs"),
    (["budget-table", "--quiet", "--warmup-epochs", "30"], "warmup_epochs"),
    (["demo", "--quiet", "--seeds", "-5"], "seeds"),
    (["demo", "--quiet", "--seeds", "1", "1"], "seeds"),
    (["budget-table", "--quiet", "--seeds", "1", "1"], "seeds"),
    (["budget-table", "--quiet", "--budgets", "0.5", "0.5"], "budgets"),
    (["budget-table", "--quiet", "--batch-size", "100000"], "batch_size"),
])
def test_family_values_are_checked_up_front(argv, field):
    refused(argv, field)


@pytest.mark.parametrize("args", [
    ["--noise", "0.999999"],  # beyond (C-1)/C: the true class is no longer the mode
    ["--noise", "0.9"],
    ["--noise", "0.5", "--noise-type", "pairflip"],
    ["--noise", "0.85", "--train-subset", "20", "--val-fraction", "0.5"],  # 1 per class
])
def test_unlearnable_label_noise_is_refused(args):
    refused(["train", *TINY, "--sampler", "oracle", "--batch-size", "8", *args], "noise")


def test_heavy_but_learnable_noise_trains():
    rc, _, err = run(["train", *TINY, "--noise", "0.85", "--batch-size", "8"])
    assert rc == 0, err


# ---------------------------------------------------------------------------------------------
# property-based fuzzing


RUN_NUMERIC = ["--noise", "--val-fraction", "--train-subset", "--budget", "--epochs",
               "--batch-size", "--lr", "--momentum", "--weight-decay", "--milestones", "--seed",
               "--gamma", "--final-lr", "--eval-every", "--loader-workers", "--checkpoint-every"]
NUMERIC_FLAGS = {  # subcommand -> numeric flags it takes
    ("train",): [*RUN_NUMERIC, "--noise-rate"],
    ("swift", "search"): ["--rounds", "--finetune-epochs", "--segments", "--finetune-budget",
                          "--search-cost", "--finetune-lr-scale", "--parallel-trials",
                          "--gpus-per-trial", *RUN_NUMERIC],
    ("swift", "verify"): ["--k"],
    ("autosampling", "search"): ["--workers", "--interval", "--warmup", "--nu", "--beta",
                                 "--stages", "--ray-num-cpus", *RUN_NUMERIC],
    ("autosampling", "replay"): RUN_NUMERIC,
    ("budget-table",): ["--train-subset", "--budgets", "--seeds", "--epochs", "--batch-size",
                        "--lr", "--weight-decay", "--warmup-epochs"],
    ("demo",): ["--seeds"],
}


def test_the_numeric_flag_table_is_complete():
    """Every flag whose type is numeric appears in NUMERIC_FLAGS for its subcommand."""
    def numeric(parser):
        return {s for a in parser._actions if a.type is not None and a.option_strings
                and a.type.__name__ in ("int", "float", "finite_float", "bounded_int")
                for s in a.option_strings if s.startswith("--")}

    def leaf(words):
        p = build_parser()
        for w in words:
            p = next(a for a in p._actions
                     if isinstance(a, argparse._SubParsersAction)).choices[w]
        return p

    for cmd, flags in NUMERIC_FLAGS.items():
        assert numeric(leaf(cmd)) == set(flags), cmd


garbage_text = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "NaN", "1e999", "-1e999", "", " ", "0x10", "1,5",
                     "--", "-", "1/2", "five", "1e", "e1", "١", "½", "0.5.5", "9" * 30,
                     "1_0", "٣.٥", "0x1p-2"]),
    st.text(alphabet=string.ascii_letters + string.punctuation + " ", min_size=1,
            max_size=12).filter(lambda s: not _is_number(s)),
)
negative = st.one_of(  # no numeric flag takes a negative value
    st.integers(max_value=-1).map(str),
    st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False).map(repr),
)
huge_int = st.integers(min_value=10**18).map(str)  # nor an int flag one of 19+ digits


def _leaf_action(cmd: tuple, flag: str) -> argparse.Action:
    p = build_parser()
    for w in cmd:
        p = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices[w]
    return next(a for a in p._actions if flag in a.option_strings)


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


@FUZZ
@given(data=st.data())
def test_garbage_for_any_numeric_flag_is_one_line(data):
    cmd = data.draw(st.sampled_from(sorted(NUMERIC_FLAGS)))
    flag = data.draw(st.sampled_from(NUMERIC_FLAGS[cmd]))
    is_int = _leaf_action(cmd, flag).type.__name__ == "bounded_int"
    value = data.draw(st.one_of(garbage_text, negative, *([huge_int] if is_int else [])))
    # "--flag=value" so that values starting with "-" are taken as values; the refusal must
    # name this flag (not some other problem of the base command)
    refused([*BASE[cmd], f"{flag}={value}"], flag.lstrip("-").replace("-", "_"))


@FUZZ
@given(content=st.binary(max_size=400))
def test_random_bytes_as_a_data_file(content):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.npz"
        path.write_bytes(content)
        refused(["train", "--dataset", "npz", "--data-dir", str(path), *TINY], "data_dir")


@FUZZ
@given(content=st.binary(max_size=300), cmd=st.sampled_from(
    [("train",), ("swift", "search"), ("autosampling", "search")]))
def test_random_bytes_as_a_config_file(content, cmd):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_bytes(content)
        rc, _, err = run([*BASE[cmd], "--config", str(path), "--device", "nosuch"])
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and ERROR_LINE.match(lines[0]), err


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                         st.floats(), st.lists(st.integers(), max_size=3))
FIELDS = ["dataset", "noise", "val_fraction", "train_subset", "model", "sampler", "budget",
          "epochs", "batch_size", "lr", "momentum", "weight_decay", "milestones", "seed",
          "device", "lr_schedule", "noise_type", "nesterov", "augment", "method", "extra",
          "out", "data_dir", "download", "weights", "bogus", "gamma", "final_lr", "eval_every",
          "loader_workers", "amp", "compile", "train", "data", "sampling"]


@FUZZ
@given(values=st.dictionaries(st.sampled_from(FIELDS), yaml_scalars, min_size=1, max_size=4))
def test_random_yaml_mappings(values):
    """Random field values: refused with one line, or a valid config (then ``--epochs 0``
    makes sure nothing trains and the refusal names epochs)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(yaml.safe_dump(values))
        refused(["train", "--config", str(path), "--quiet", "--epochs", "0"])


@FUZZ
@given(rows=st.integers(1, 40), k=st.integers(1, 12), label_shift=st.integers(-2, 10**9),
       nan=st.booleans())
def test_random_small_npz_data_sets(rows, k, label_shift, nan):
    """Tiny or broken data sets: refused with one line, never a hang or a traceback."""
    a = blobs(rows, k)
    if label_shift:
        a["y"][rows // 2] = label_shift
    if nan:
        a["x"][0, 0] = np.nan
    with tempfile.TemporaryDirectory() as tmp:
        rc, _, err = run(["train", "--dataset", "npz", "--data-dir", npz(Path(tmp), **a),
                          "--epochs", "1", "--quiet", "--batch-size", "4"])
        if rc != 0:  # valid small sets (rows >= ~5k with every class) may train
            lines = err.strip().splitlines()
            assert rc == 2 and len(lines) == 1 and ERROR_LINE.match(lines[0]), err


def test_documented_success_on_tiny_settings(tmp_path):
    rc, out, err = run(["train", *TINY, "--out", str(tmp_path / "r")])
    assert rc == 0 and "uniform on digits" in out, err


@settings(max_examples=8, deadline=None, derandomize=True)
@given(lr=st.floats(1e-6, 10), momentum=st.floats(0, 0.99), wd=st.floats(0, 0.5),
       noise=st.floats(0, 0.85), val=st.floats(0.05, 0.5), batch=st.integers(1, 100),
       seed=st.integers(0, 2**32 - 1), schedule=st.sampled_from(["step", "linear", "cosine",
                                                                  "constant"]))
def test_values_in_range_train_or_refuse_in_one_line(lr, momentum, wd, noise, val, batch,
                                                    seed, schedule):
    """In-range values either train one tiny epoch (status 0) or are refused in one line
    (a divergence at lr near 10 is reported that way); never a traceback."""
    rc, out, err = run(["train", *TINY, "--lr", repr(lr), "--momentum", repr(momentum),
                        "--weight-decay", repr(wd), "--noise", repr(noise), "--val-fraction",
                        repr(val), "--batch-size", str(batch), "--seed", str(seed),
                        "--lr-schedule", schedule])
    if rc != 0:
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and ERROR_LINE.match(lines[0]), err
    else:
        assert "uniform on digits" in out
