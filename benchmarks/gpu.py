"""Training steps/s of sampletune's Trainer on one GPU against a plain PyTorch loop.

For each setting (``--amp`` off / bf16 / fp16, ``torch.compile`` off / on) both contenders
train the same model (same seed) with the same batch size and optimizer (SGD, momentum,
weight decay, constant LR) on the same in-memory image set held on the device: the plain
loop draws a ``randperm`` per epoch, slices, runs forward/backward/step under the same
autocast (and grad scaler for fp16) and compiled model; sampletune runs
``Trainer.train_epoch`` over a ``UniformSampler``. Contenders are built and warmed up
once (compilation happens there), then timed in rounds that run every contender of every
setting once, so that load on the machine hits all alike; printed are the median steps/s
of each, and the median over rounds of sampletune / plain and of each setting's
speed-up over amp off, eager.

Data: Fashion-MNIST (``/usr/share/datasets/fashion-mnist``, the first ``--n`` training
images) when present, else synthetic 1x28x28 images.

Without CUDA it prints a one-line notice and exits 0; ``--cpu`` measures the same ratios on
the CPU instead (amp off and bf16; compile only with ``--compile``), labelled as such.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/gpu.py [--model resnet18]`` (GPU), or
``... benchmarks/gpu.py --cpu`` (CPU fallback).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from sampletune.data import DataSplits, RawDataset, load_dataset, make_splits
from sampletune.models import build_model
from sampletune.samplers import UniformSampler
from sampletune.train import TrainConfig, Trainer, seeded_model
from sampletune.train.accel import AMP_DTYPES

FASHION = Path("/usr/share/datasets/fashion-mnist")


def make_data(n: int) -> DataSplits:
    """``n`` training images (1, 28, 28) of Fashion-MNIST, or synthetic ones without it."""
    if FASHION.is_dir():
        raw = load_dataset("fashion-mnist", FASHION)
    else:
        g = torch.Generator().manual_seed(0)
        y = torch.arange(n + 1000) % 10
        x = torch.rand(n + 1000, 1, 28, 28, generator=g)
        raw = RawDataset("synthetic", x[:n], y[:n], x[n:], y[n:], num_classes=10)
    return make_splits(raw, seed=0, train_subset=n, val_fraction=0.05)


class SampletuneRun:
    """sampletune's ``Trainer`` over a ``UniformSampler``, one epoch at a time."""

    def __init__(self, data: DataSplits, model_name: str, cfg: TrainConfig):
        model = seeded_model(lambda: build_model(model_name, data.input_shape,
                                                 data.num_classes), 0)
        self.sampler = UniformSampler(len(data.train), seed=0)
        self.trainer = Trainer(model, data, cfg, total_steps=10**9)
        self.epoch = 0

    def run_epoch(self) -> int:
        steps = self.trainer.train_epoch(self.sampler, self.epoch)["steps"]
        self.epoch += 1
        return steps


class PlainRun:
    """The loop a careful PyTorch user writes for in-memory data on the device."""

    def __init__(self, data: DataSplits, model_name: str, cfg: TrainConfig):
        device = torch.device(cfg.device)
        self.model = seeded_model(lambda: build_model(model_name, data.input_shape,
                                                      data.num_classes), 0).to(device)
        self.net = torch.compile(self.model) if cfg.compile else self.model
        self.opt = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay)
        self.scaler = torch.amp.GradScaler(device.type) if cfg.amp == "fp16" else None
        self.x, self.y = data.train.x.to(device), data.train.y.to(device)
        self.cfg, self.device = cfg, device
        self.generator = torch.Generator().manual_seed(0)

    def run_epoch(self) -> int:
        cfg = self.cfg
        idx = torch.randperm(len(self.y), generator=self.generator).to(self.device)
        steps = 0
        for s in range(0, len(idx), cfg.batch_size):
            b = idx[s : s + cfg.batch_size]
            with torch.autocast(self.device.type, dtype=AMP_DTYPES.get(cfg.amp),
                                enabled=cfg.amp != "off"):
                loss = F.cross_entropy(self.net(self.x[b]), self.y[b])
            self.opt.zero_grad(set_to_none=True)
            if self.scaler is None:
                loss.backward()
                self.opt.step()
            else:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.opt)
                self.scaler.update()
            steps += 1
        return steps


def timed(run, epochs: int, device: torch.device) -> float:
    """Steps per second of ``epochs`` epochs of ``run`` (the device synchronised)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    steps = sum(run.run_epoch() for _ in range(epochs))
    sync()
    return steps / (time.perf_counter() - t0)


def paired(a: list[float], b: list[float]) -> float:
    """The median over rounds of ``a / b`` (both measured in the same round)."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smallcnn")
    ap.add_argument("--n", type=int, default=20_000, help="training images")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=1, help="epochs per timed round")
    ap.add_argument("--repeats", type=int, default=11, help="timed rounds (median)")
    ap.add_argument("--cpu", action="store_true", help="without CUDA: measure on the CPU")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                    help="include torch.compile settings (default: on CUDA only)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    args = ap.parse_args()
    if torch.cuda.is_available():
        device, label = torch.device("cuda"), torch.cuda.get_device_name()
    elif args.cpu:
        device, label = torch.device("cpu"), "CPU FALLBACK, no GPU"
    else:
        print("benchmarks/gpu.py: no CUDA device here, nothing measured "
              "(--cpu measures the same ratios on the CPU)")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    amps = ["off", "bf16", "fp16"] if device.type == "cuda" else ["off", "bf16"]
    compiles = [False, True] if (args.compile if args.compile is not None
                                 else device.type == "cuda") else [False]
    data = make_data(args.n)
    base = TrainConfig(batch_size=args.batch_size, lr=0.05, lr_schedule="constant",
                       device=device.type, loader_workers=0)
    print(f"{label}: {args.model} on {data.name} ({len(data.train)} images "
          f"{'x'.join(map(str, data.input_shape))} in memory), batch {args.batch_size}, "
          f"{args.epochs} epochs a round, median of {args.repeats} rounds, "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)")
    settings = [(amp, c) for c in compiles for amp in amps]
    runs = {}  # (amp, compile, contender) -> run, each warmed up (compilation, cuDNN, ...)
    for amp, compile_ in settings:
        cfg = base.replace(amp=amp, compile=compile_)
        for name, kind in (("sampletune", SampletuneRun), ("plain", PlainRun)):
            runs[amp, compile_, name] = kind(data, args.model, cfg)
            timed(runs[amp, compile_, name], 1, device)
    rates: dict[tuple, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeats):  # every contender once a round, under the same load
        for key, run in runs.items():
            rates[key].append(timed(run, args.epochs, device))
    print("| amp | compile | sampletune steps/s | plain loop steps/s | sampletune / plain "
          "| sampletune: speed-up over amp off, eager |\n|---|---|---|---|---|---|")
    reference = rates["off", False, "sampletune"]
    for amp, compile_ in settings:
        mine, plain = rates[amp, compile_, "sampletune"], rates[amp, compile_, "plain"]
        print(f"| {amp} | {'on' if compile_ else 'off'} | {statistics.median(mine):.1f} "
              f"| {statistics.median(plain):.1f} | {paired(mine, plain):.3f} "
              f"| {paired(mine, reference):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
