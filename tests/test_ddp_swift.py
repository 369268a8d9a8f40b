"""The Swift search under DDP (issue 11): a real 2-process gloo job runs the whole pipeline
(w_share, features, the search's fine-tunes, retrain, guards, report) against one process
with the same global batch.

Tolerance. As in ``test_ddp.py`` the two runs differ by float32 rounding (each rank's
forward pass sees half the batch, DDP averages two half-batch gradients), so fine-tune
scores and the kept model's accuracies are compared to within one example. The ranks are
compared exactly: every decision is rank 0's (proposals, scores, the guards' counts, the
estimated noise rate) and every metric is all-reduced. The random agent's proposals do not
depend on scores, so both runs search the same samplers. Sizes: 360 training examples and a
global batch of 64 (32 per rank; the last 40, 20 per rank); the fine-tune draws 180 (the
last batch 52, 26 per rank): every batch splits evenly, so both runs train the same
examples in the same steps.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
from helpers import Stop, spawn_two_ranks

from sampletune import io, rundir
from sampletune.cli import main
from sampletune.errors import ConfigError
from sampletune.experiments.config import RunConfig
from sampletune.experiments.setup import load_data
from sampletune.experiments.swift_pipeline import run_swift
from sampletune.swift.search import FineTuner, SearchConfig, load_trials
from sampletune.train.distributed import World

RUN = RunConfig(dataset="digits", noise=0.4, train_subset=400, model="mlp", epochs=3,
                batch_size=64, lr=0.05, lr_schedule="cosine", device="cpu", seed=0)
SEARCH = SearchConfig(rounds=3, finetune_epochs=1, agent="random")
COST = 0.5
KILL_AT = 1  # the first session is killed when trial 1's fine-tune starts


def decisions(report: dict) -> dict:
    """What the pipeline decided, and the metrics it decided on (no wall times)."""
    s = report["search"]
    return {"uniform": {k: report["uniform"][k] for k in ("val_acc", "test_acc",
                                                          "early_stopped")},
            "swift": {k: report["swift"][k] for k in ("val_acc", "test_acc", "early_stopped")},
            "chosen": report["chosen"],
            "search": {k: s[k] for k in ("best_val_acc", "best_params", "best_origin",
                                         "uniform_finetune_val_acc", "estimated_noisy_share",
                                         "estimated_cut_retrained", "agent_recommendation",
                                         "failed_trials", "finetune_budget")},
            "finetune": {k: v["finetune_val_acc"]
                         for k, v in report["diagnostics"]["samplers"].items()},
            "refine": {k: ({m: x for m, x in v.items() if m != "wall_time"}
                           if k == "metrics" else v)
                       for k, v in report["refine"].items() if k != "wall_time"}}


class KilledFineTuner(FineTuner):
    """Raises :class:`Stop` on trial ``KILL_AT``, as a kill would, on every rank at once
    (before any collective); counts the fine-tunes run."""

    calls: list[int] = []
    kill = True

    def __call__(self, probs, trial):
        KilledFineTuner.calls.append(trial)
        if self.kill and trial == KILL_AT:
            raise Stop
        return super().__call__(probs, trial)


def _worker(rank, rendezvous, out, results):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=2)
    writes = []
    for module, name in ((io, "_atomic_replace"), (io, "append_jsonl"), (rundir, "claim")):
        real = getattr(module, name)

        def logged(path, *a, _real=real, **kw):
            writes.append(str(path))
            return _real(path, *a, **kw)
        setattr(module, name, logged)
    import sampletune.experiments.swift_pipeline as pipeline

    pipeline.FineTuner = KilledFineTuner
    pipeline.MIN_AMBIGUOUS = 0.0  # the refinement always runs
    try:
        run = RUN.replace(out=out)
        try:
            run_swift(run, SEARCH, search_cost=COST, progress=False)
            killed = False
        except Stop:
            killed = True
        KilledFineTuner.kill, before = False, list(KilledFineTuner.calls)
        report = run_swift(run, SEARCH, search_cost=COST, progress=False)  # resumes
        # atomic: whole or absent (helpers.spawn_two_ranks); serialised before it is logged
        io.write_json(os.path.join(results, f"rank{rank}.json"), {
            "killed": killed, "before": before, "after": KilledFineTuner.calls[len(before):],
            "writes": list(writes), "decisions": decisions(report)})
        dist.barrier()  # neither rank disconnects while the other still talks to it
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``(single report, [rank0, rank1], run_dir)``: one process, and a 2-rank gloo job
    killed mid-search and rerun."""
    tmp = tmp_path_factory.mktemp("ddp_swift")
    out = tmp / "run"
    spawn_two_ranks(_worker, (str(tmp / "rendezvous"), str(out), str(tmp)),
                    [tmp / f"rank{r}.json" for r in range(2)])
    ranks = [json.loads((tmp / f"rank{r}.json").read_text()) for r in range(2)]
    import sampletune.experiments.swift_pipeline as pipeline

    threads, gate = torch.get_num_threads(), pipeline.MIN_AMBIGUOUS
    torch.set_num_threads(1)
    pipeline.MIN_AMBIGUOUS = 0.0
    try:
        single = run_swift(RUN.replace(out=str(tmp / "single")), SEARCH, search_cost=COST,
                           progress=False)
    finally:
        torch.set_num_threads(threads)
        pipeline.MIN_AMBIGUOUS = gate
    return single, ranks, out


def within_one_example(a: float | None, b: float | None, n: int) -> bool:
    return (a is None) == (b is None) and (a is None or abs(a - b) * n <= 1 + 1e-9)


@pytest.mark.slow
def test_every_rank_takes_the_same_decisions(runs):
    _, ranks, _ = runs
    assert ranks[0]["decisions"] == ranks[1]["decisions"]


@pytest.mark.slow
def test_two_ranks_search_like_one_process_with_the_same_global_batch(runs):
    single, ranks, _ = runs
    ddp, one = ranks[0]["decisions"], decisions(single)
    data = load_data(RUN)
    n_val, n_test = len(data.val), len(data.test)
    assert ddp["finetune"].keys() == one["finetune"].keys()
    for name, score in one["finetune"].items():
        assert within_one_example(ddp["finetune"][name], score, n_val), name
    for key in ("best_origin", "estimated_cut_retrained", "failed_trials", "finetune_budget"):
        assert ddp["search"][key] == one["search"][key], key
    # the cut's end points are quantiles of features that differ by rounding
    best, one_best = ddp["search"]["best_params"], one["search"]["best_params"]
    assert best.keys() == one_best.keys()
    for key, values in one_best.items():
        assert best[key] == pytest.approx(values, rel=1e-6, abs=1e-9), key
    assert ddp["search"]["estimated_noisy_share"] == pytest.approx(
        one["search"]["estimated_noisy_share"], abs=0.01)
    for key in ("name", "uniform_model", "epoch"):  # the model kept
        assert ddp["chosen"][key] == one["chosen"][key], key
    assert within_one_example(ddp["chosen"]["val_acc"], one["chosen"]["val_acc"], n_val)
    assert within_one_example(ddp["chosen"]["test_acc"], one["chosen"]["test_acc"], n_test)
    for part in ("uniform", "swift"):
        assert within_one_example(ddp[part]["val_acc"], one[part]["val_acc"], n_val), part
        assert within_one_example(ddp[part]["test_acc"], one[part]["test_acc"], n_test), part
    # The refinement ran in both (forced), re-scored the same cut and decided alike.
    r, r_one = ddp["refine"], one["refine"]
    assert r["retrained"] and r_one["retrained"] and r["kept"] == r_one["kept"]
    assert r["ambiguous"] == pytest.approx(r_one["ambiguous"], abs=2 / len(data.train))
    assert r["swapped"] == pytest.approx(r_one["swapped"], abs=2 / len(data.train))
    assert within_one_example(r["metrics"]["test_acc"], r_one["metrics"]["test_acc"], n_test)


@pytest.mark.slow
def test_only_rank_0_writes_and_a_killed_search_resumes(runs):
    single, ranks, out = runs
    assert ranks[0]["writes"] and not ranks[1]["writes"]
    for name in ("swift.json", "report.json", "report.md", "sampler.json", "model.pt",
                 "fig1_plane.png", "fig3_search.png", "search/trials.jsonl",
                 "uniform/checkpoint.pt", "refined/checkpoint.pt"):
        assert (out / name).exists(), name
    assert io.read_json(out / "swift.json")["world_size"] == 2
    for rank in ranks:
        assert rank["killed"]
        # trial 0 ran once; the killed trial 1 ran again on resuming, then trial 2
        assert rank["before"] == [0, KILL_AT] and rank["after"] == [1, 2]
    journal = io.read_jsonl(out / "search" / "trials.jsonl")
    assert sum(r["state"] == "running" and r["trial"] == KILL_AT for r in journal) == 2
    assert [t["origin"] for t in load_trials(out / "search")] == \
        [t["origin"] for t in load_trials(out.parent / "single" / "search")]
    assert io.read_json(out / "report.json")["chosen"] == ranks[0]["decisions"]["chosen"]
    # the checkpoints hold both ranks' generators: one process cannot take the run over
    with pytest.raises(ConfigError, match="differs in: world_size"):
        run_swift(RUN.replace(out=str(out)), SEARCH, search_cost=COST, progress=False)


def test_decisions_are_rank_0s(monkeypatch):
    """World.decide: rank 1 gets rank 0's numbers, None included (no process group here:
    the broadcast is what rank 0 would send)."""
    sent = torch.tensor([0.75, math.nan, 3.0], dtype=torch.float64)
    monkeypatch.setattr(dist, "broadcast", lambda t, src: t.copy_(sent))
    monkeypatch.setattr(dist, "get_backend", lambda: "gloo")
    assert World(1, 2).decide(0.5, 0.25, None) == (0.75, None, 3.0)
    assert World(0, 1).decide(0.5, None) == (0.5, None)  # one process: unchanged


SEARCH_FLAGS = ["swift", "search", "--dataset", "digits", "--noise", "0.4", "--train-subset",
                "400", "--model", "mlp", "--epochs", "3", "--batch-size", "64", "--lr", "0.05",
                "--lr-schedule", "cosine", "--device", "cpu", "--rounds", "3",
                "--finetune-epochs", "1", "--agent", "random", "--search-cost", "0.5",
                "--quiet"]


@pytest.mark.parametrize("flags,error", [
    (["--engine", "process"], "engine: 'process' does not run under torchrun (2 processes "
     "train each trial together) (allowed: local)"),
    (["--parallel-trials", "2"], "parallel_trials: 2 trials in flight do not run under "
     "torchrun (2 processes train each trial together) (allowed: 1)"),
])
def test_torchrun_search_runs_one_trial_at_a_time_in_process(monkeypatch, capsys, tmp_path,
                                                               flags, error):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main([*SEARCH_FLAGS, "--out", str(tmp_path / "run"), *flags]) == 2
    assert capsys.readouterr().err.strip() == f"sampletune: error: {error}"
    assert not (tmp_path / "run").exists()  # refused before any work


def test_torchrun_refuses_swift_verify(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["swift", "verify", "--run", "nowhere"]) == 2
    assert capsys.readouterr().err.strip() == (
        "sampletune: error: command: 'swift verify' does not run distributed (torchrun with "
        "more than one process) (allowed: train, swift search)")


@pytest.mark.slow
def test_torchrun_swift_search_cli(tmp_path):
    """The documented command: ``torchrun --nproc_per_node 2 -m sampletune.cli swift
    search``; rerun, it resumes the finished run and prints the same line."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "sampletune.cli", "--threads", "1", *SEARCH_FLAGS, "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    lines = []
    for _ in range(2):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        assert res.returncode == 0, res.stderr
        lines.append(res.stdout.strip().splitlines())
    assert len(lines[0]) == 2 and lines[0][0].startswith("digits (noise 0.4), mlp: test acc")
    assert lines[0][1].startswith("warning: the validation split has 40 examples")
    strip = [[line.split("; pipeline")[0] for line in run] for run in lines]  # wall times differ
    assert strip[0] == strip[1]
    assert io.read_json(out / "swift.json")["world_size"] == 2
