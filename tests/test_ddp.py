"""Data-parallel training (issue 11): a real 2-process gloo job against one process.

Tolerance. With the same global batch the two runs do the same arithmetic in another
order: each rank's forward pass sees half the batch, DDP averages two half-batch mean
gradients instead of taking one mean, and evaluation sums two float64 parts. Those are
float32 rounding differences (~1e-7 relative per step) that a few epochs of SGD on a tiny
MLP amplify to ~1e-6 at most, so losses and weights are compared to 1e-5 (relative for
losses, absolute for weights) and accuracies to within one example. The training split
(270 examples) splits evenly over 2 ranks, as does every batch (32 global, 16 per rank; the
last 14, 7 per rank), so both runs train exactly the same examples in the same steps.
Everything the ranks compute from gathered values (sampler statistics, selective
backprop's choices, weights) is compared exactly between the ranks.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
from helpers import KillAfter, Stop, checkpoint_epoch, spawn_two_ranks, tiny_splits
from torch import nn

from sampletune import io
from sampletune.errors import ConfigError
from sampletune.samplers import PSGDSampler, ShuffleSampler
from sampletune.selection import SelectiveBackprop
from sampletune.swift.search import FineTuner, SearchConfig
from sampletune.train import TrainConfig, seeded_model, train
from sampletune.train.distributed import World, process_group

RTOL = ATOL = 1e-5
# checkpoint_every: a checkpoint after every epoch, each on rank 0's clock (a collective)
CFG = TrainConfig(epochs=3, batch_size=32, lr=0.05, lr_schedule="linear", seed=0,
                  checkpoint_every=1e-9)
N_KILL = 8  # the resumed run is killed after this step (mid-way through epoch 1)


def small_model():
    return seeded_model(lambda: nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(),
                                              nn.Linear(32, 3)), 0)


def params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def noise_augment(x, generator):
    """Draws from the trainer's generator (one stream per rank under DDP)."""
    return x + 0.1 * torch.randn(x.shape, generator=generator)


class LoggedSB(SelectiveBackprop):
    """Selective backprop that records the indices of every batch it hands to training."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.log = []

    def select(self, model, index, x, y):
        kept = super().select(model, index, x, y)
        if kept is not None:
            self.log.append(kept[0].cpu())
        return kept


def run_all(run_dir=None):
    """The scenarios, in one process or on each rank: results as tensors and numbers."""
    data = tiny_splits()
    n = len(data.train)
    out = {}
    for name, sampler in (("uniform", ShuffleSampler(n, seed=0)),
                          ("psgd", PSGDSampler(n, budget=0.6, seed=0))):
        r = train(small_model(), data, sampler, CFG, progress=False)
        out[name] = {"params": params(r.model), "history": r.history}
        if name == "uniform":  # Swift's inner loop: fine-tune w_share under a sampler
            tuner = FineTuner(r.model, data, CFG, SearchConfig(finetune_epochs=2, seed=0))
            out["finetune"] = tuner(torch.linspace(0.1, 1.0, n, dtype=torch.float64), 0)
    out["psgd"]["importance"] = sampler.importance()
    sb = LoggedSB(CFG.batch_size, budget=0.5, seed=0)
    r = train(small_model(), data, ShuffleSampler(n, seed=0), CFG, selector=sb,
              steps_per_epoch=5, progress=False)
    out["sb"] = {"params": params(r.model), "history": r.history, "kept": torch.cat(sb.log),
                 "selector_history": sb.history.cpu(), "pool": sb.pool[0].cpu(),
                 "backprop": sb.backprop_examples}
    if run_dir is not None:  # killed and resumed, with per-rank augmentation streams
        def job(observers=()):
            return train(small_model(), data, PSGDSampler(n, budget=0.6, seed=1), CFG,
                         augment=noise_augment, run_dir=run_dir, observers=observers,
                         progress=False)
        full = train(small_model(), data, PSGDSampler(n, budget=0.6, seed=1), CFG,
                     augment=noise_augment, progress=False)
        try:
            job([KillAfter(N_KILL)])
            out["killed"] = False
        except Stop:
            out["killed"] = True
        out["checkpoint_epoch"] = checkpoint_epoch(run_dir)
        resumed = job()
        out["resume"] = {"params": params(resumed.model), "full": params(full.model),
                         "epochs": [h["epoch"] for h in resumed.history]}
    return out


def _worker(rank, rendezvous, run_dir, results):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=2)
    writes = []
    for name in ("save_torch", "write_jsonl"):  # which ranks write files
        real = getattr(io, name)

        def logged(path, *a, _real=real, **kw):
            writes.append(str(path))
            return _real(path, *a, **kw)
        setattr(io, name, logged)
    try:
        out = run_all(run_dir)
        out["writes"] = len(writes)
        # atomic: whole or absent (helpers.spawn_two_ranks); logged after the count above
        io.save_torch(os.path.join(results, f"rank{rank}.pt"), out)
        dist.barrier()  # neither rank disconnects while the other still talks to it
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``(single, [rank0, rank1], run_dir)``: the scenarios in one process and in a 2-rank
    gloo job (spawned once for all the tests here)."""
    tmp = tmp_path_factory.mktemp("ddp")
    run_dir = tmp / "run"
    spawn_two_ranks(_worker, (str(tmp / "rendezvous"), str(run_dir), str(tmp)),
                    [tmp / f"rank{r}.pt" for r in range(2)])
    ranks = [torch.load(tmp / f"rank{r}.pt", weights_only=True) for r in range(2)]
    return run_all(), ranks, run_dir


def same_metrics(single, ddp, data):
    """Epoch records equal within the tolerance: losses to RTOL, accuracies to one example."""
    assert len(single) == len(ddp)
    for a, b in zip(single, ddp, strict=True):
        assert (a["epoch"], a["steps"], a["lr"]) == (b["epoch"], b["steps"], b["lr"])
        for key in ("train_loss", "val_loss", "test_loss"):
            assert b[key] == pytest.approx(a[key], rel=RTOL), key
        assert abs(a["val_acc"] - b["val_acc"]) * len(data.val) <= 1 + 1e-9
        assert abs(a["test_acc"] - b["test_acc"]) * len(data.test) <= 1 + 1e-9


def without_time(history):
    return [{k: v for k, v in r.items() if k != "time"} for r in history]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["uniform", "psgd", "sb"])
def test_two_ranks_train_like_one_process_with_the_same_global_batch(runs, name):
    single, ranks, _ = runs
    for rank in ranks:
        same_metrics(single[name]["history"], rank[name]["history"], tiny_splits())
        torch.testing.assert_close(rank[name]["params"], single[name]["params"],
                                   rtol=0, atol=ATOL)
    # every rank holds the same model and the same metrics (evaluation is all-reduced)
    assert torch.equal(ranks[0][name]["params"], ranks[1][name]["params"])
    assert without_time(ranks[0][name]["history"]) == without_time(ranks[1][name]["history"])


@pytest.mark.slow
def test_swift_finetune_scores_like_one_process(runs):
    single, ranks, _ = runs
    assert ranks[0]["finetune"] == ranks[1]["finetune"]
    assert abs(ranks[0]["finetune"] - single["finetune"]) * len(tiny_splits().val) <= 1 + 1e-9


@pytest.mark.slow
def test_psgd_statistics_are_global_and_identical_on_every_rank(runs):
    single, ranks, _ = runs
    assert torch.equal(ranks[0]["psgd"]["importance"], ranks[1]["psgd"]["importance"])
    torch.testing.assert_close(ranks[0]["psgd"]["importance"], single["psgd"]["importance"],
                               rtol=RTOL, atol=0)


@pytest.mark.slow
def test_selective_backprop_keeps_the_same_examples_on_every_rank(runs):
    single, ranks, _ = runs
    for key in ("kept", "selector_history", "pool"):
        assert torch.equal(ranks[0]["sb"][key], ranks[1]["sb"][key]), key
    assert ranks[0]["sb"]["backprop"] == ranks[1]["sb"]["backprop"] == single["sb"]["backprop"]
    assert torch.equal(ranks[0]["sb"]["kept"], single["sb"]["kept"])  # as one process chose


@pytest.mark.slow
def test_only_rank_0_writes_and_a_killed_ddp_run_resumes(runs):
    _, ranks, run_dir = runs
    assert ranks[0]["writes"] > 0 and ranks[1]["writes"] == 0
    for rank in ranks:
        assert rank["killed"] and rank["checkpoint_epoch"] == 0
        assert torch.equal(rank["resume"]["params"], rank["resume"]["full"])
        assert rank["resume"]["epochs"] == [0, 1, 2]
    assert (run_dir / "metrics.jsonl").read_text().count("\n") == 3
    # the checkpoint holds both ranks' generators: one process cannot take it over
    data = tiny_splits()
    with pytest.raises(ConfigError, match="^checkpoint: .* does not fit this run"):
        train(small_model(), data, PSGDSampler(len(data.train), budget=0.6, seed=1), CFG,
              augment=noise_augment, run_dir=run_dir, progress=False)


def test_global_batch_must_split_evenly_over_the_ranks():
    assert World(1, 4).split_batch(32) == 8
    with pytest.raises(ConfigError, match="^batch_size: 30 does not split evenly over 4 "
                       "processes"):
        World(0, 4).split_batch(30)


def test_gather_batch_restores_the_single_process_order(monkeypatch):
    """Rank r holds positions r, r + 2, ... of the global batch; gathering interleaves."""
    batch = torch.arange(10) * 10
    shards = [batch[0::2], batch[1::2]]
    packed = [torch.stack([s.double(), s.double() + 1]) for s in shards]  # what each rank sends

    def all_gather(parts, t):
        for part, sent in zip(parts, packed, strict=True):
            part.copy_(sent)
    monkeypatch.setattr(dist, "all_gather", all_gather)
    index, plus_one = World(0, 2).gather_batch(shards[0], shards[0].float() + 1)
    assert torch.equal(index, batch) and index.dtype == torch.int64
    assert torch.equal(plus_one, batch.float() + 1)
    assert [World(r, 2).shard(batch).tolist() for r in range(2)] == [s.tolist() for s in shards]


def test_under_torchrun_only_train_and_swift_search_run_and_download_nothing(monkeypatch,
                                                                             capsys):
    from sampletune.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["report", "nowhere"]) == 2
    assert capsys.readouterr().err.strip() == (
        "sampletune: error: command: 'report' does not run distributed (torchrun with more "
        "than one process) (allowed: train, swift search)")
    for command in (["train"], ["swift", "search", "--out", "nowhere"]):
        assert main([*command, "--dataset", "cifar10", "--download"]) == 2
        assert capsys.readouterr().err.startswith("sampletune: error: download: every process")


@pytest.mark.parametrize("device,problem", [
    ("cuda:1", "'cuda:1' names one GPU for 2 processes"),
    ("mps", "'mps' cannot run distributed"),
])
def test_torchrun_devices(monkeypatch, device, problem):
    for var, value in (("WORLD_SIZE", "2"), ("RANK", "0"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=f"^device: {problem} .allowed: cpu .gloo., cuda"):
        with process_group(device):
            pass
    assert not dist.is_initialized()


def test_a_rank_that_fails_stops_every_rank(monkeypatch):
    """World.agree: rank 1 ran its step, rank 0's raised; both stop with one line."""
    monkeypatch.setattr(dist, "all_reduce", lambda t, op: t.fill_(0))  # rank 0 failed
    with pytest.raises(ConfigError, match="^torchrun: rank 0 stopped with its own error, so "
                       "rank 1 stops too$"):
        World(1, 2).agree(lambda: None, "cpu")

    def claim():
        raise ConfigError("out", "taken")
    with pytest.raises(ConfigError, match="^out: taken$"):
        World(0, 2).agree(claim, "cpu")


@pytest.mark.slow
def test_torchrun_cli_matches_one_process(tmp_path):
    """The documented command: ``torchrun --nproc_per_node 2 -m sampletune.cli train``."""
    from sampletune.experiments import RunConfig, run_train
    from sampletune.experiments.setup import load_data

    flags = ["--dataset", "digits", "--train-subset", "400", "--model", "mlp", "--epochs", "2",
             "--batch-size", "32", "--lr", "0.05", "--device", "cpu", "--seed", "0"]
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "sampletune.cli", "--threads", "1", "train", *flags, "--method", "p-sgd",
           "--budget", "0.5", "--out", str(out), "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("test acc") == 2  # rank 0 alone prints (last and best epoch)
    for name in ("config.yaml", "identity.json", "metrics.jsonl", "checkpoint.pt",
                 "summary.json", "learning_curve.png"):
        assert (out / name).exists()
    assert io.read_json(out / "identity.json", "out")["world_size"] == 2
    ddp = io.read_jsonl(out / "metrics.jsonl", "epoch")
    cfg = RunConfig(dataset="digits", train_subset=400, model="mlp", epochs=2, batch_size=32,
                    lr=0.05, device="cpu", seed=0, method="p-sgd", budget=0.5)
    same_metrics(run_train(cfg, progress=False).history, ddp, load_data(cfg))
