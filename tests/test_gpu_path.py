"""The GPU path (issue 11): mixed precision, data placement, pinned memory, torch.compile.

bf16 autocast runs on the CPU too, so its tests run everywhere; fp16 (with its grad
scaler), data on the GPU and pinned memory need CUDA and are skipped without it.
"""

from __future__ import annotations

import pytest
import torch
from helpers import KillAfter, Stop, checkpoint_epoch
from torch import nn

from sampletune.cli import main
from sampletune.data import Split
from sampletune.data.loader import StreamingLoader
from sampletune.errors import ConfigError
from sampletune.experiments import RunConfig
from sampletune.experiments.run import config_identity
from sampletune.samplers import UniformSampler
from sampletune.train import TrainConfig, Trainer, accel, evaluate, seeded_model, train
from sampletune.train.accel import logits_of

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
CFG = TrainConfig(epochs=4, batch_size=32, lr=0.05, lr_schedule="linear", seed=0)


def small_model(seed=0):
    return seeded_model(lambda: nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(),
                                              nn.Linear(32, 3)), seed)


def params(model):
    return torch.cat([p.detach().flatten().cpu() for p in model.parameters()])


def run(data, cfg, **kw):
    return train(small_model(), data, UniformSampler(len(data.train), seed=1), cfg,
                 progress=False, **kw)


class Losses:
    """An observer keeping each step's reported per-example losses."""

    def __init__(self):
        self.seen = []

    def on_batch(self, report):
        self.seen.append(report.losses)


# ---- amp off: the default path, unchanged -----------------------------------------------

def test_amp_off_is_the_default_path(tiny_data):
    """``amp="off"`` given explicitly trains exactly the weights and metrics of a config
    without the field, and leaves the forward pass untouched (no cast: a float64 model
    keeps float64 logits)."""
    default, off = run(tiny_data, CFG), run(tiny_data, CFG.replace(amp="off"))
    assert torch.equal(params(default.model), params(off.model))
    assert [{k: v for k, v in r.items() if k != "time"} for r in default.history] == \
        [{k: v for k, v in r.items() if k != "time"} for r in off.history]
    net = nn.Linear(4, 2).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    assert logits_of(net, x, "off", torch.device("cpu")).dtype == torch.float64


def test_amp_settings_stay_out_of_old_run_identities():
    """Run directories written before the field existed keep resuming: amp off and compile
    off are left out of the identity; bf16 goes in."""
    identity = config_identity(RunConfig(device="cpu"))
    assert "amp" not in identity and "compile" not in identity
    assert config_identity(RunConfig(device="cpu", amp="bf16"))["amp"] == "bf16"


# ---- bf16 on the CPU --------------------------------------------------------------------

def test_bf16_trains_and_reports_float32_losses(tiny_data):
    losses = Losses()
    bf16 = run(tiny_data, CFG.replace(amp="bf16"), observers=[losses])
    full = run(tiny_data, CFG)
    assert losses.seen and all(t.dtype == torch.float32 for t in losses.seen)
    assert not torch.equal(params(bf16.model), params(full.model))  # autocast was on
    assert bf16.final["test_acc"] > 0.6
    assert abs(bf16.final["test_acc"] - full.final["test_acc"]) < 0.1


def test_bf16_evaluation_gives_float32_losses(tiny_data):
    model = small_model()
    logits = logits_of(model, tiny_data.val.x, "bf16", torch.device("cpu"))
    assert logits.dtype == torch.float32
    bf16 = evaluate(model, tiny_data.val, amp="bf16")
    full = evaluate(model, tiny_data.val)
    assert bf16["loss"] == pytest.approx(full["loss"], rel=0.02)


def test_bf16_resumes_to_the_weights_of_an_uninterrupted_run(tiny_data, tmp_path):
    cfg = CFG.replace(amp="bf16", checkpoint_every=0)
    full = run(tiny_data, cfg)
    with pytest.raises(Stop):  # killed in epoch 2 (9 steps an epoch)
        run(tiny_data, cfg, run_dir=tmp_path, observers=[KillAfter(20)])
    assert checkpoint_epoch(tmp_path) == 1
    resumed = run(tiny_data, cfg, run_dir=tmp_path)
    assert torch.equal(params(full.model), params(resumed.model))


# ---- refused settings -------------------------------------------------------------------

def test_fp16_on_the_cpu_is_one_line(capsys):
    with pytest.raises(ConfigError, match=r"^amp: fp16 needs a CUDA device .*not 'cpu'"):
        TrainConfig(amp="fp16")
    with pytest.raises(ConfigError, match=r"^amp: unknown mode 'fp8' \(allowed: off, bf16, fp16"):
        TrainConfig(amp="fp8")
    assert main(["--threads", "1", "train", "--device", "cpu", "--amp", "fp16", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sampletune: error: amp: fp16 needs a CUDA")


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto resolves to CUDA here")
def test_fp16_with_device_auto_is_checked_once_resolved():
    assert TrainConfig(device="auto", amp="fp16").amp == "fp16"  # resolved by the run
    with pytest.raises(ConfigError, match="^amp: fp16 needs a CUDA device"):
        RunConfig(amp="fp16")


def test_a_compiler_that_cannot_run_is_one_line(tiny_data, monkeypatch):
    monkeypatch.setattr(accel, "_compile_problem", lambda device_type: "no C++ compiler")
    with pytest.raises(ConfigError, match=r"^compile: torch.compile cannot run on cpu here "
                       r"\(no C\+\+ compiler\) \(allowed: --no-compile\)$"):
        Trainer(small_model(), tiny_data, CFG.replace(compile=True), total_steps=1)


@pytest.mark.slow
def test_compile_trains_like_eager(tiny_data):
    """One tiny compiled run on the CPU (a few seconds; skipped where torch.compile does not
    work): the same weights as eager up to float rounding."""
    problem = accel._compile_problem("cpu")
    if problem is not None:
        pytest.skip(f"torch.compile does not run here: {problem}")
    cfg = CFG.replace(epochs=1)
    compiled, eager = run(tiny_data, cfg.replace(compile=True)), run(tiny_data, cfg)
    assert torch.allclose(params(compiled.model), params(eager.model), atol=1e-5)


# ---- CUDA only --------------------------------------------------------------------------

@CUDA
def test_fp16_trains_with_a_grad_scaler_and_resumes_it(tiny_data, tmp_path):
    cfg = CFG.replace(amp="fp16", device="cuda", checkpoint_every=0)
    losses = Losses()
    full = run(tiny_data, cfg, observers=[losses])
    assert all(t.dtype == torch.float32 for t in losses.seen)
    assert full.final["test_acc"] > 0.6
    with pytest.raises(Stop):
        run(tiny_data, cfg, run_dir=tmp_path, observers=[KillAfter(20)])
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["trainer"]["scaler"]["scale"] > 0
    resumed = run(tiny_data, cfg, run_dir=tmp_path)
    assert torch.equal(params(full.model), params(resumed.model))


@CUDA
def test_in_memory_splits_are_placed_on_the_gpu_once(tiny_data):
    trainer = Trainer(small_model(), tiny_data, CFG.replace(device="cuda"), total_steps=1)
    for given, placed in trainer._placed:
        assert given.x.device.type == "cpu" and placed.x.device.type == "cuda"
    assert trainer.train_split is trainer._placed[0][1]
    assert trainer.evaluate(tiny_data.val) == pytest.approx(
        evaluate(trainer.model, tiny_data.val, "cuda"))


@CUDA
def test_streamed_batches_come_through_pinned_memory(tiny_data):
    split = tiny_data.train
    lazy = Split(list(split.x), split.y, split.clean_y, split.noisy)  # not in memory
    loader = StreamingLoader(lazy, UniformSampler(len(split), seed=0), 32, "cuda",
                             num_workers=0)
    assert loader.loader.pin_memory
    index, x, y = next(iter(loader))
    assert {t.device.type for t in (index, x, y)} == {"cuda"}
    assert torch.equal(x.cpu(), split.x[index.cpu()])
