import subprocess
import sys

import pytest
import torch
from helpers import KillAfter, LazyX, Stop, checkpoint_epoch
from torch import nn

from sampletune.errors import ConfigError
from sampletune.samplers import UniformSampler, WeightedSampler
from sampletune.train import TrainConfig, Trainer, lr_factor, seeded_model, train


def small_model(seed=0):
    return seeded_model(lambda: nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(),
                                              nn.Linear(32, 3)), seed)


def params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


CFG = TrainConfig(epochs=6, batch_size=32, lr=0.05, lr_schedule="linear", seed=0)


def test_step_schedule_milestones_are_fractions():
    cfg = TrainConfig(lr=0.1, lr_schedule="step", milestones=(1 / 3, 2 / 3))
    f = [lr_factor(cfg, s, 300) for s in range(300)]
    assert f[0] == 1 and f[99] == 1 and f[100] == pytest.approx(0.1)
    assert f[199] == pytest.approx(0.1) and f[200] == pytest.approx(0.01)


def test_linear_schedule_ends_near_zero():
    cfg = TrainConfig(lr=0.1, lr_schedule="linear", final_lr=1e-6)
    assert lr_factor(cfg, 0, 100) == 1
    assert lr_factor(cfg, 99, 100) * 0.1 == pytest.approx(1e-6)
    assert lr_factor(cfg, 50, 101) == pytest.approx((1 + 1e-5) / 2)


def test_cosine_schedule():
    cfg = TrainConfig(lr=0.1, lr_schedule="cosine", final_lr=0.0)
    assert lr_factor(cfg, 0, 11) == 1 and lr_factor(cfg, 10, 11) == pytest.approx(0)
    assert lr_factor(cfg, 5, 11) == pytest.approx(0.5)


def test_scheduler_follows_iterations(tiny_data):
    t = Trainer(small_model(), tiny_data, CFG, total_steps=10)
    lrs = []
    for _ in range(10):
        t.train_batch(torch.arange(8))
        lrs.append(t.optimizer.param_groups[0]["lr"])  # the LR that step used
    assert lrs[0] == 0.05 and lrs[-1] == pytest.approx(1e-6)


@pytest.mark.parametrize("field,value", [("epochs", 0), ("budget", 1.5), ("budget", 0.0),
                                         ("lr_schedule", "exp"), ("milestones", (1.5,))])
def test_train_config_validation(field, value):
    with pytest.raises(ConfigError, match=f"^{field}: "):
        TrainConfig(**{field: value})


def test_same_seed_same_weights(tiny_data):
    a = train(small_model(), tiny_data, UniformSampler(len(tiny_data.train), seed=1), CFG,
              progress=False)
    b = train(small_model(), tiny_data, UniformSampler(len(tiny_data.train), seed=1), CFG,
              progress=False)
    c = train(small_model(), tiny_data, UniformSampler(len(tiny_data.train), seed=2), CFG,
              progress=False)
    assert torch.equal(params(a.model), params(b.model))
    assert not torch.equal(params(a.model), params(c.model))
    assert a.final["test_acc"] > 0.6


def test_global_rng_untouched(tiny_data):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    train(small_model(), tiny_data, UniformSampler(len(tiny_data.train), seed=1), CFG,
          progress=False)
    assert torch.equal(before, torch.get_rng_state())




def test_resume_after_kill_gives_identical_weights(tiny_data, tmp_path):
    sampler = lambda: WeightedSampler(torch.rand(len(tiny_data.train),  # noqa: E731
                                                 generator=torch.Generator().manual_seed(0)),
                                      seed=3)
    cfg = CFG.replace(checkpoint_every=0)  # a checkpoint after every epoch
    full = train(small_model(), tiny_data, sampler(), cfg, progress=False)
    run = tmp_path / "run"
    with pytest.raises(Stop):  # killed mid-way through epoch 3 (9 steps per epoch)
        train(small_model(), tiny_data, sampler(), cfg, run_dir=run, progress=False,
              observers=[KillAfter(31)])
    assert checkpoint_epoch(run) == 2
    resumed = train(small_model(), tiny_data, sampler(), cfg, run_dir=run, progress=False)
    assert torch.equal(params(full.model), params(resumed.model))
    assert [r["epoch"] for r in resumed.history] == list(range(6))
    assert (run / "metrics.jsonl").read_text().count("\n") == 6


class _Clock:
    """A wall clock for the training loop that moves ``step`` seconds at each epoch's end."""

    def __init__(self, step):
        self.now, self.step = 0.0, step

    def perf_counter(self):
        return self.now

    def on_batch(self, report):
        pass

    def on_epoch_end(self, record, is_best):
        self.now += self.step


def _saved_epochs(monkeypatch):
    """The last finished epoch of each checkpoint ``train`` writes, in order."""
    import sampletune.train.loop as loop

    saved, real = [], loop.save_checkpoint

    def recording(run_dir, trainer, sampler, observers, progress):
        saved.append(progress.next_epoch - 1)
        real(run_dir, trainer, sampler, observers, progress)

    monkeypatch.setattr(loop, "save_checkpoint", recording)
    return saved


def test_a_run_checkpoints_on_its_wall_clock_interval_and_after_its_last_epoch(
        tiny_data, tmp_path, monkeypatch):
    import sampletune.train.loop as loop

    clock, saved = _Clock(2.0), _saved_epochs(monkeypatch)
    monkeypatch.setattr(loop, "time", clock)
    sampler = UniformSampler(len(tiny_data.train), seed=0)
    train(small_model(), tiny_data, sampler, CFG.replace(checkpoint_every=5.0),
          run_dir=tmp_path / "a", observers=[clock], progress=False)
    assert saved == [2, 5]  # 6 s after the start, then the last epoch (12 s)
    saved.clear()
    train(small_model(), tiny_data, sampler, CFG.replace(checkpoint_every=0),
          run_dir=tmp_path / "b", observers=[clock], progress=False)
    assert saved == [0, 1, 2, 3, 4, 5]


def test_a_short_run_writes_one_checkpoint_and_a_kill_before_it_starts_over(
        tiny_data, tmp_path, monkeypatch):
    """The default interval (30 s) outlasts a tiny run: its one checkpoint follows the last
    epoch, and a run killed before that resumes from the start to the same weights."""
    saved = _saved_epochs(monkeypatch)
    sampler = lambda: UniformSampler(len(tiny_data.train), seed=0)  # noqa: E731
    full = train(small_model(), tiny_data, sampler(), CFG, run_dir=tmp_path / "a",
                 progress=False)
    assert saved == [5] and checkpoint_epoch(tmp_path / "a") == 5
    with pytest.raises(Stop):
        train(small_model(), tiny_data, sampler(), CFG, run_dir=tmp_path / "b",
              progress=False, observers=[KillAfter(31)])
    assert not (tmp_path / "b" / "checkpoint.pt").exists()
    resumed = train(small_model(), tiny_data, sampler(), CFG, run_dir=tmp_path / "b",
                    progress=False)
    assert torch.equal(params(full.model), params(resumed.model))


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_a_checkpoint_interval_that_is_not_seconds_is_one_line(value):
    with pytest.raises(ConfigError, match=r"^checkpoint_every: .* is not a number of seconds "
                       r"\(allowed: >= 0 \(0: after every epoch\)\)$"):
        TrainConfig(checkpoint_every=value)


def test_observers_get_per_example_losses_by_index(tiny_data):
    seen = []

    class Rec:
        def on_batch(self, r):
            seen.append(r)

    train(small_model(), tiny_data, UniformSampler(len(tiny_data.train), seed=0),
          CFG.replace(epochs=1), observers=[Rec()], progress=False)
    r = seen[0]
    assert r.indices.shape == r.losses.shape == r.true_prob.shape == (32,)
    assert torch.allclose(r.true_prob, torch.exp(-r.losses))


def test_budget_reduces_steps(tiny_data):
    n = len(tiny_data.train)
    full = train(small_model(), tiny_data, UniformSampler(n), CFG, progress=False)
    half = train(small_model(), tiny_data, UniformSampler(n, budget=0.5), CFG, progress=False)
    assert half.final["steps"] == 6 * 5 and full.final["steps"] == 6 * 9


def test_cli_end_to_end(tmp_path):
    out = tmp_path / "run"
    cfg = tmp_path / "run.yaml"
    cfg.write_text("dataset: digits\nnoise: 0.2\nmodel: mlp\nepochs: 3\nlr: 0.05\n")
    cmd = [sys.executable, "-m", "sampletune.cli", "train", "--config", str(cfg),
           "--epochs", "2", "--sampler", "uniform", "--seed", "0", "--out", str(out), "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "test acc" in res.stdout
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "learning_curve.png"):
        assert (out / name).exists()
    assert "epochs: 2" in (out / "config.yaml").read_text()  # the flag overrode the file


@pytest.mark.parametrize("flags,field", [
    (["--noise", "1.2"], "noise"), (["--budget", "0"], "budget"),
    (["--dataset", "nope"], "dataset"), (["--model", "nope"], "model"),
    (["--data-dir", "/no/such/dir"], "data_dir"), (["--lr-schedule", "step", "--lr", "-1"], "lr"),
])
def test_cli_bad_input_is_one_line_exit_2(flags, field, capsys):
    from sampletune.cli import main

    assert main(["train", "--epochs", "1", "--quiet", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sampletune: error: {field}: ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_divergence_is_a_one_line_error_not_silent_garbage(tiny_data):
    # lr 1e30 is now refused up front (TrainConfig: lr <= 10); the largest lr with a heavy
    # weight decay still diverges within a couple of epochs
    with pytest.raises(ConfigError, match=r"^lr: training diverged: .* epoch \d is nan"):
        train(small_model(), tiny_data, UniformSampler(len(tiny_data.train)),
              CFG.replace(lr=10.0, weight_decay=0.9, lr_schedule="constant"), progress=False)


@pytest.mark.parametrize("flags", [
    ["--epochs", "1", "--batch-size", "68"],  # NaN only after the epoch's last step
    ["--epochs", "5", "--noisy", "l2rw"],  # NaN meta-weights once read as skipped steps
])
def test_divergence_the_train_loss_does_not_show_is_a_one_line_error(flags, capsys, tmp_path):
    from sampletune.cli import main

    assert main(["--threads", "1", "train", "--train-subset", "400", "--quiet", "--lr", "10",
                 "--weight-decay", "0.9", "--lr-schedule", "constant", *flags,
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sampletune: error: lr: training diverged") and err.count("\n") == 1


def test_streaming_loader_path_matches_in_memory(tiny_data):
    from dataclasses import replace

    from sampletune.data import Split

    lazy = replace(tiny_data, train=Split(LazyX(tiny_data.train.x), tiny_data.train.y,
                                          tiny_data.train.clean_y, tiny_data.train.noisy))
    assert not lazy.train.in_memory
    cfg = CFG.replace(epochs=2, loader_workers=0)
    n = len(tiny_data.train)
    a = train(small_model(), tiny_data, UniformSampler(n, seed=4), cfg, progress=False)
    b = train(small_model(), lazy, UniformSampler(n, seed=4), cfg, progress=False)
    assert torch.allclose(params(a.model), params(b.model), atol=1e-6)


def test_early_stopping_keeps_the_best_validation_epoch(tiny_data, tmp_path):
    from sampletune.train import evaluate

    sampler = lambda: UniformSampler(len(tiny_data.train), seed=1)  # noqa: E731
    cfg = CFG.replace(lr=0.5, lr_schedule="constant")  # noisy: val accuracy moves around
    res = train(small_model(), tiny_data, sampler(), cfg, progress=False)
    accs = [r["val_acc"] for r in res.history]
    best = accs.index(max(accs))  # the earliest of ties
    assert res.final["best_epoch"] == best and res.final["best_val_acc"] == max(accs)
    assert res.final["best_test_acc"] == res.history[best]["test_acc"]
    assert evaluate(res.best_model(), tiny_data.val)["acc"] == max(accs)
    # A resumed run keeps the best weights found before the kill.
    run = tmp_path / "run"
    train(small_model(), tiny_data, sampler(), cfg, epochs=cfg.epochs, run_dir=run,
          progress=False)
    resumed = train(small_model(), tiny_data, sampler(), cfg, run_dir=run, progress=False)
    assert resumed.final["best_epoch"] == best
    assert torch.equal(params(resumed.best_model()), params(res.best_model()))


def test_the_loop_finds_the_optional_hook_methods_by_protocol():
    from sampletune.budget.measures import SampleCounter
    from sampletune.features import TrainLossTracker
    from sampletune.noisy.estimate import LossMaskSelector
    from sampletune.noisy.l2rw import L2RW
    from sampletune.samplers import IndexSampler, PSGDSampler
    from sampletune.selection import OrderedSGD, SelectiveBackprop
    from sampletune.train.hooks import EpochAware, EpochObserver, Stateful

    stateful = (IndexSampler, PSGDSampler, OrderedSGD, SelectiveBackprop, L2RW,
                LossMaskSelector, SampleCounter, TrainLossTracker)
    assert all(issubclass(c, Stateful) for c in stateful)  # so checkpoints keep their state
    assert all(issubclass(c, EpochAware) for c in (IndexSampler, OrderedSGD, LossMaskSelector))
    assert issubclass(TrainLossTracker, EpochObserver)
    assert not issubclass(SampleCounter, EpochAware | EpochObserver)


def test_the_old_import_paths_still_work():
    from sampletune.train import hooks, trainer
    from sampletune.train.loop import (  # the names other code imported from loop.py
        LossFn,
        MixedBatch,
        Selector,
        Trainer,
        best_record,
        credit_to_sources,
    )

    assert (LossFn, MixedBatch, Selector, credit_to_sources) == (
        hooks.LossFn, hooks.MixedBatch, hooks.Selector, hooks.credit_to_sources)
    assert Trainer is trainer.Trainer and best_record([]) is None
