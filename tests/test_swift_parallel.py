"""Parallel Swift trials (issues 10, 11): the search core's journal and its resume, batch
proposals, and the engines (in-process, process pool, Ray) giving the same trials."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch
from helpers import FAST_BO, CleanMass, Stop, swift_features

from sampletune.errors import ConfigError
from sampletune.features import train_loss_features
from sampletune.models import build_model
from sampletune.swift.agents import AGENTS, make_agent
from sampletune.swift.engines import EngineConfig, LocalEngine
from sampletune.swift.family import SwiftFamily
from sampletune.swift.params import SwiftSpace
from sampletune.swift.reference import reference_params
from sampletune.swift.search import (
    FineTuner,
    SearchConfig,
    SwiftObjective,
    load_trials,
    run_search,
)
from sampletune.swift.trials import Journal, run_trials
from sampletune.train import TrainConfig, seeded_model

GOLDEN = Path(__file__).parent / "data" / "swift_q1_trials.json"
TIMING = ("seconds", "agent_seconds", "elapsed")


def _strip(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def _cfg(agent="bo", **kw):
    return SearchConfig(agent=agent, seed=3, agent_options=FAST_BO if agent == "bo" else {},
                        **kw)


def _search(out, cfg, score=None, engine="local", references=True):
    feats, noisy = swift_features()
    family = SwiftFamily(feats, cfg.features, cfg.transform)
    refs = reference_params(family, cfg.segments) if references else []
    return run_search(out, family, score or CleanMass(noisy), cfg, initial=refs,
                      progress=False, engine=engine)


# ---- q = 1 is the sequential search of earlier versions --------------------------------


@pytest.mark.parametrize("agent", AGENTS)
def test_a_sequential_search_gives_the_trials_of_earlier_versions(tmp_path, agent):
    """The points, scores and pick of a 14-trial search (6 references, then the agent; BO
    fits its GP from trial 6), recorded before trials could run in parallel.

    Each GP fit amplifies the float rounding of the one before about tenfold: on another CPU
    of the same build the points agree to 1e-11 at trial 6 and 6e-8 at trial 12, and the last
    trial's by only 4e-4. So every point but the last is compared to 1e-5 (a changed
    algorithm moves the first proposal by far more) and the last by its origin alone."""
    golden = json.loads(GOLDEN.read_text())[agent]
    result = _search(tmp_path / "s", _cfg(agent, rounds=14))
    assert [t["origin"] for t in result.trials] == golden["origin"]
    for got, want in zip(result.trials[:-1], golden["x"][:-1], strict=True):
        assert got["x"] == pytest.approx(want, abs=1e-5)
    assert [t["score"] for t in result.trials[:-1]] == pytest.approx(golden["score"][:-1],
                                                                     abs=1e-5)
    assert result.pick == golden["pick"]
    assert "parallel_trials" not in json.loads((tmp_path / "s" / "search.json").read_text())[
        "search"]  # a sequential search's identity is the one earlier versions recorded


# ---- batch proposals ---------------------------------------------------------------------


def _told(name, n=5, dim=4):
    agent = make_agent(name, dim, 0, **(FAST_BO if name == "bo" else {}))
    for _ in range(n):
        x = agent.ask()
        agent.tell(x, float(-((x - 0.3) ** 2).sum()))
    return agent


@pytest.mark.parametrize("name", AGENTS)
def test_a_batch_is_proposals_in_a_row_each_pending_for_the_next(name):
    agent = _told(name)
    state = torch.get_rng_state()
    batch = agent.ask_batch(3)
    assert batch.shape == (3, 4) and batch.dtype == torch.float64
    assert torch.equal(batch[0], agent.ask())  # nothing pending: the sequential point
    assert torch.equal(agent.ask_batch(2, batch[:1]), batch[1:])
    assert torch.equal(agent.ask_batch(1, batch[:2])[0], batch[2])
    assert len(set(map(tuple, batch.tolist()))) == 3
    assert torch.equal(torch.get_rng_state(), state) and len(agent.xs) == 5


def test_bo_believes_pending_points_and_looks_elsewhere():
    agent = _told("bo", n=6)
    x = agent.ask()
    believer = agent._posterior.believe(x.unsqueeze(0))
    mu, var = agent._posterior(x.unsqueeze(0))
    mu_b, var_b = believer(x.unsqueeze(0))
    assert torch.allclose(mu, mu_b) and float(var_b) < float(var)  # the mean is kept
    assert not torch.equal(agent.ask_batch(1, x.unsqueeze(0))[0], x)


# ---- the journal: resume with trials in flight, any completion order ------------------------


class _Reversed(LocalEngine):
    """Finishes the last submitted trial first (an engine whose workers finish out of order),
    and raises :class:`Stop` at its ``stop_at``-th result (a kill)."""

    def __init__(self, objective, stop_at=None):
        super().__init__(objective)
        self.stop_at, self.results = stop_at, 0

    def wait(self):
        self.results += 1
        if self.results == self.stop_at:
            raise Stop
        self.queue.rotate(1)
        return super().wait()


def _run(path, engine_of, q, rounds=9, agent="bo"):
    feats, noisy = swift_features()
    cfg = _cfg(agent)
    family = SwiftFamily(feats, cfg.features, cfg.transform)
    space = SwiftSpace(cfg.segments, len(cfg.features))
    objective = SwiftObjective(family, CleanMass(noisy))
    return run_trials(Journal(path, space), make_agent(cfg.agent, cfg.dim, cfg.seed,
                                                       **cfg.agent_options),
                      objective, engine_of(objective), rounds, q,
                      initial=reference_params(family, cfg.segments)[:2])


def test_trials_do_not_depend_on_the_completion_order(tmp_path):
    in_order = _run(tmp_path / "a.jsonl", LocalEngine, q=3)
    reversed_ = _run(tmp_path / "b.jsonl", _Reversed, q=3)
    assert _strip(in_order) == _strip(reversed_)
    sequential = _run(tmp_path / "c.jsonl", LocalEngine, q=1)
    assert _strip(sequential)[:3] == _strip(in_order)[:3]  # references, then a Sobol point
    assert _strip(sequential) != _strip(in_order)  # the GP's proposals saw pending points


@pytest.mark.parametrize("stop_at", [1, 3, 5, 8])
def test_a_search_killed_with_trials_in_flight_resumes_to_the_same_trials(tmp_path, stop_at):
    full = _run(tmp_path / "full.jsonl", _Reversed, q=3)
    path = tmp_path / "cut.jsonl"
    with pytest.raises(Stop):
        _run(path, lambda o: _Reversed(o, stop_at), q=3)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    in_flight = Journal(path, SwiftSpace(4, 2)).unfinished
    assert in_flight and {r["state"] for r in lines} >= {"pending", "running"}
    resumed = _run(path, LocalEngine, q=3)
    assert _strip(resumed) == _strip(full)
    assert Journal(path, SwiftSpace(4, 2)).unfinished == {}


def test_only_final_records_are_fsynced_and_a_journal_cut_after_one_resumes(tmp_path,
                                                                           monkeypatch):
    """Pending and running records are written through to the OS but not fsynced (three
    fsyncs a trial were a quarter of a search on a 500-row table); a power loss can take
    those behind the last final record, which must resume as a kill there would."""
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    full = _run(tmp_path / "full.jsonl", _Reversed, q=3)
    lines = (tmp_path / "full.jsonl").read_text().splitlines(keepends=True)
    final = [i for i, line in enumerate(lines) if json.loads(line)["state"] == "done"]
    assert len(synced) == len(final) == 9 < len(lines)
    monkeypatch.setattr(os, "fsync", real_fsync)
    for cut in final[:-1]:
        path = tmp_path / f"cut{cut}.jsonl"
        path.write_text("".join(lines[:cut + 1]))
        assert _strip(_run(path, LocalEngine, q=3)) == _strip(full)


def test_a_journal_without_ids_and_states_still_loads_and_resumes(tmp_path):
    full = _search(tmp_path / "full", _cfg("rl", rounds=8))
    old = tmp_path / "old"
    _search(old, _cfg("rl", rounds=8))
    # what earlier versions wrote: one record per finished trial, no id/state/elapsed
    legacy = [{k: v for k, v in r.items() if k not in ("id", "state", "elapsed")}
              for r in load_trials(old)[:5]]
    (old / "trials.jsonl").write_text("".join(json.dumps(r) + "\n" for r in legacy))
    loaded = load_trials(old)
    assert [r["state"] for r in loaded] == ["done"] * 5 and [r["id"] for r in loaded] == \
        list(range(5))
    resumed = _search(old, _cfg("rl", rounds=8))
    assert _strip(resumed.trials) == _strip(full.trials)
    assert resumed.wall_time >= sum(r["seconds"] for r in legacy)


@pytest.mark.parametrize("line,problem", [
    ({"trial": 0, "state": "started"}, "line 1 has a bad 'trial', 'id' or 'state'"),
    ({"trial": 0, "id": 1, "state": "running"}, "line 1 has a bad 'trial', 'id' or 'state'"),
    ({"trial": 0, "state": "running"}, "runs without being pending .line 1"),
    ({"trial": 2, "state": "pending", "origin": "agent", "x": [0.5] * 10, "params": {"e": [0,
      0.2, 0.5, 0.7, 1], "v": [1] * 5, "c": [0, 0]}}, "proposes trial 2 where 0 belongs"),
    ({"trial": 1, "state": "done", "x": [0.5] * 10, "params": None}, "trial 1 has a bad.*line 1"),
    ({"trial": 0, "state": "done", "x": [0.5] * 10, "params": {"e": [0, 0.5, 1], "v":
      [1, 1, 1], "c": [0, 0]}, "score": 0.5, "seconds": 1}, "trial 0 has a bad"),  # 2 pieces
    ({"trial": 0, "state": "done", "x": [0.5] * 10, "params": {"e": [0, 0.2, 0.5, 0.7, 1],
      "v": [1] * 5, "c": [0, 0]}, "seconds": 1}, "trial 0 has a bad.*'score'"),  # no score
    ({"trial": 0, "state": "pending", "x": [0.5] * 10, "params": {"e": [0, 0.2, 0.5, 0.7, 1],
      "v": [1] * 5, "c": [0, 0]}}, "trial 0 has a bad.*'origin'"),  # no origin
    ({"trial": 0, "state": "done", "origin": 7, "x": [0.5] * 10, "params": {"e": [0, 0.2, 0.5,
      0.7, 1], "v": [1] * 5, "c": [0, 0]}, "score": 0.5, "seconds": 1}, "trial 0 has a bad"),
    ({"trial": 0, "state": "done", "x": [10**400] + [0.5] * 9, "params": {"e": [0, 0.2, 0.5,
      0.7, 1], "v": [1] * 5, "c": [0, 0]}, "score": 0.5, "seconds": 1}, "trial 0 has a bad"),
    ({"trial": 0, "state": "failed", "x": [0.5] * 10, "params": {"e": [0, 0.2, 0.5, 0.7, 1],
      "v": [1] * 5, "c": [0, 0]}, "score": None, "error": 5, "seconds": 1}, "trial 0 has a bad"),
])
def test_a_damaged_journal_is_refused_naming_the_line(tmp_path, line, problem):
    path = tmp_path / "trials.jsonl"
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(ConfigError, match=f"^out: .*{problem}"):
        Journal(path, SwiftSpace(4, 2))


def test_a_trial_finished_twice_or_out_of_order_is_refused(tmp_path):
    good = _search(tmp_path / "s", _cfg("random", rounds=2)).trials
    path = tmp_path / "trials.jsonl"
    path.write_text(json.dumps(good[1]) + "\n")
    with pytest.raises(ConfigError, match="finishes trial 1 where 0 belongs .line 1"):
        Journal(path, SwiftSpace(4, 2))


# ---- the engines: the same trials in-process, in a process pool and on Ray ------------------


@pytest.fixture(scope="module")
def finetune_objective():
    """A real inner loop on tiny data and features. w_share is untrained and the fine-tune
    short, so that samplers' validation accuracies differ (trained, all of them reach 1)."""
    from helpers import tiny_splits

    data = tiny_splits()
    cfg = TrainConfig(epochs=2, batch_size=32, lr=0.01, lr_schedule="cosine")
    w_share = seeded_model(lambda: build_model("mlp", data.input_shape, 3), 0)
    n = len(data.train)
    g = torch.Generator().manual_seed(1)
    loss = torch.rand(n, generator=g, dtype=torch.float64) + 2.0 * data.train.noisy.double()
    feats = {**train_loss_features(loss, data.train.y),
             "renormed_entropy": torch.rand(n, generator=g, dtype=torch.float64),
             "grad_norm": loss + 0.1}
    search = _cfg("bo", rounds=6, finetune_epochs=1, finetune_budget=0.5, parallel_trials=2)
    return feats, FineTuner(w_share, data, cfg, search), search


def _engine_search(tmp_path, name, finetune_objective, engine):
    feats, tuner, cfg = finetune_objective
    family = SwiftFamily(feats, cfg.features, cfg.transform)
    refs = reference_params(family, cfg.segments)[:2]
    return run_search(tmp_path / name, family, tuner, cfg, initial=refs, progress=False,
                      engine=engine)


@pytest.mark.slow
def test_process_pool_and_in_process_give_the_same_trials(tmp_path, finetune_objective):
    local = _engine_search(tmp_path, "local", finetune_objective, "local")
    pool = _engine_search(tmp_path, "process", finetune_objective, "process")
    assert _strip(pool.trials) == _strip(local.trials)
    assert len({r["score"] for r in local.trials}) > 1  # real, differing fine-tune scores
    ids = json.loads((tmp_path / "local" / "search.json").read_text())["search"]
    assert ids["parallel_trials"] == 2


@pytest.mark.slow
def test_ray_gives_the_same_trials(tmp_path, finetune_objective):
    ray = pytest.importorskip("ray")
    local = _engine_search(tmp_path, "local", finetune_objective, "local")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = _engine_search(tmp_path, "ray", finetune_objective, EngineConfig("ray"))
    finally:
        ray.shutdown()
    assert _strip(on_ray.trials) == _strip(local.trials)


@pytest.mark.slow
def test_a_killed_process_pool_search_resumes_to_the_same_result(tmp_path):
    _, noisy = swift_features()
    cfg = _cfg("bo", rounds=10, parallel_trials=2)
    full = _search(tmp_path / "full", cfg)
    with pytest.raises(Stop):  # raised in a worker at trial 7, with 6 or 8 in flight
        _search(tmp_path / "cut", cfg, score=CleanMass(noisy, stop_at=7), engine="process")
    journal = Journal(tmp_path / "cut" / "trials.jsonl", SwiftSpace(4, 2))
    assert 7 in journal.unfinished and len(journal.unfinished) == 2
    assert len(journal.finished) == min(journal.unfinished)
    resumed = _search(tmp_path / "cut", cfg, engine="process")
    assert _strip(resumed.trials) == _strip(full.trials)
    assert resumed.best == full.best and resumed.pick == full.pick


def test_engine_settings_are_checked():
    with pytest.raises(ConfigError, match="^engine: unknown engine 'threads'"):
        EngineConfig("threads")
    with pytest.raises(ConfigError, match="^ray_address: is an option of the ray engine"):
        EngineConfig("process", ray_address="auto")
    with pytest.raises(ConfigError, match="^gpus_per_trial: 1.5"):
        EngineConfig("ray", gpus_per_trial=1.5)
    with pytest.raises(ConfigError, match="^parallel_trials: 0 is out of range"):
        SearchConfig(parallel_trials=0)
    assert dataclasses.replace(SearchConfig(), parallel_trials=4).to_dict()[
        "parallel_trials"] == 4


def test_an_objective_that_cannot_be_pickled_is_a_config_error(tmp_path):
    _, noisy = swift_features()
    with pytest.raises(ConfigError, match="^engine: the objective cannot be sent"):
        _search(tmp_path / "s", _cfg("random", rounds=2), engine="process",
                score=lambda p, t: float(p[~noisy].sum()))


@pytest.mark.slow
def test_swift_search_command_runs_parallel_trials_in_a_process_pool(tmp_path):
    from sampletune.cli import main

    out = tmp_path / "run"
    argv = ["--threads", "1", "swift", "search", "--train-subset", "200", "--epochs", "1",
            "--rounds", "3", "--finetune-epochs", "1", "--parallel-trials", "2", "--engine",
            "process", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert (report["search"]["parallel_trials"], report["search"]["engine"]) == (2, "process")
    records = load_trials(out / "search")
    assert [r["state"] for r in records] == ["done"] * 3
    assert main(argv[:-2] + ["--engine", "local", "--out", str(out)]) == 0  # resumes anywhere
