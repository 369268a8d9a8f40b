"""The default job: uniform sampling against the noise-dropping oracle on noisy digits."""

from __future__ import annotations

from pathlib import Path

from sampletune.experiments.config import RunConfig
from sampletune.experiments.run import run_train


def run_demo(out: str | Path = "runs/demo", seeds: list[int] | tuple[int, ...] = (0,)) -> dict:
    """Train ``mlp`` on ``digits`` with 40% symmetric noise, uniform vs oracle, and print
    the mean test accuracy of each over ``seeds``."""
    base = RunConfig(dataset="digits", noise=0.4, model="mlp", epochs=40, batch_size=64,
                     lr=0.05, lr_schedule="cosine")
    acc: dict[str, list[float]] = {"uniform": [], "oracle": []}
    for seed in seeds:
        for sampler in acc:
            run_dir = Path(out) / f"{sampler}-s{seed}"
            cfg = base.replace(sampler=sampler, seed=seed, out=str(run_dir))
            acc[sampler].append(run_train(cfg).final["test_acc"])
    means = {k: sum(v) / len(v) for k, v in acc.items()}
    print(f"digits, 40% symmetric label noise, mlp, {len(seeds)} seed(s): test accuracy")
    print(f"  uniform {means['uniform']:.4f}   oracle (drops noisy) {means['oracle']:.4f}")
    return means
