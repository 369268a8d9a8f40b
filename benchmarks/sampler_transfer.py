"""Transfer of a Swift sampler to another architecture (swift-sampler.txt Table 2, "SS(R18)"
on other models), at CPU scale with 40% symmetric label noise.

For each pair (source -> target) and seed, ``swift search`` runs on the source model with its
defaults, and the target is trained (the library's defaults otherwise: 40 epochs, batch 128,
lr 0.1, step schedule, clean 10% validation split, as ``benchmarks/swift_noise.py``):

- ``uniform``: a shuffled pass per epoch;
- ``SS(src), target feats``: the source's sampler file with ``--swift-features target``: its
  parameters on features of the target's own uniform pre-trained (early-stopped) model, as
  the paper transfers;
- ``SS(src), source feats``: the same file with ``--swift-features search``: its parameters
  on the source model's features, as saved;
- ``SS(self)``: ``swift search`` on the target itself, its retrained sampler (the uniform
  run again where the search kept uniform and retrained nothing). Its retrain draws ``N``
  examples per epoch; the ``train`` rows draw whole mini-batches (at most ``batch - 1``
  fewer).

Each cell is the test accuracy (%) at the last epoch and at the best-validation epoch
(early stopping), mean ± sample std over ``--seeds``.

    .venv/bin/python benchmarks/sampler_transfer.py                       # both pairs
    .venv/bin/python benchmarks/sampler_transfer.py --pairs digits --seeds 0   # a quick look

Every run lives under ``--out`` and is cached there (rerun to resume); the table is printed
and written to ``OUT/table.md`` (``benchmarks/results/sampler_transfer.md`` holds it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from sampletune.experiments import RunConfig, run_train
from sampletune.io import read_json, write_json, write_text
from sampletune.models.registry import register_model
from sampletune.models.zoo import ConvBase1d

sys.path.insert(0, str(Path(__file__).parent))
from swift_noise import run_config  # noqa: E402  (the shared data settings)

WIDE = 100  # channels of the wider cnn1d (cnn1d has 25)


@register_model("cnn1d-wide")
def cnn1d_wide(input_shape: tuple[int, ...], num_classes: int) -> ConvBase1d:
    """MNIST-1D's ConvBase with four times the channels: about 13x cnn1d's parameters."""
    c, length = (1, input_shape[0]) if len(input_shape) == 1 else input_shape
    return ConvBase1d(c, length, num_classes, channels=WIDE)


# data set -> (source model, target model)
PAIRS = {"digits": ("mlp", "smallcnn"), "mnist1d": ("cnn1d", "cnn1d-wide")}
ROWS = ("uniform", "SS(src), target feats", "SS(src), source feats", "SS(self)")
NOISE = 0.4


def _search(run: RunConfig, out: Path) -> dict:
    """``swift search`` on ``run`` in ``out``: the sampler file, the pick's origin, and the
    early-stopped and last-epoch test accuracies of its retrain."""
    done = out / "result.json"
    if done.exists():
        return read_json(done)
    from sampletune.experiments.swift_pipeline import run_swift
    from sampletune.swift.search import SearchConfig

    rep = run_swift(run.replace(out=str(out)), SearchConfig(), progress=False)
    result = {"sampler": str(out / "sampler.json"), "origin": rep["search"]["best_origin"],
              "last": rep["swift"]["test_acc"],
              "early": rep["swift"]["early_stopped"]["test_acc"]}
    write_json(done, result)
    return result


def _train(run: RunConfig, out: Path) -> dict:
    """``sampletune train`` as ``run`` says, in ``out``: last-epoch and early-stopped test
    accuracy, and the line saying which features a Swift sampler used."""
    done = out / "result.json"
    if done.exists():
        return read_json(done)
    res = run_train(run.replace(out=str(out / "run")), progress=False)
    f = res.final
    result = {"last": f["test_acc"], "early": f["best_test_acc"],
              "features": f.get("swift_features")}
    write_json(done, result)
    return result


def run_pair(name: str, seeds, out: Path) -> tuple[list[str], list[str]]:
    """The table rows of one pair (markdown), and the feature lines the runs printed."""
    source, target = PAIRS[name]
    acc = {r: {"last": [], "early": []} for r in ROWS}
    origins, lines = [], []
    for seed in seeds:
        base = run_config(name, NOISE, seed, out)
        tag = f"{name}-s{seed}"
        src = _search(base.replace(model=source), out / "search" / f"{tag}-{source}")
        origins.append(src["origin"])
        tgt = base.replace(model=target)
        cells = {
            "uniform": _train(tgt, out / "uniform" / f"{tag}-{target}"),
            "SS(src), target feats": _train(
                tgt.replace(sampler="swift", weights=src["sampler"], swift_features="target"),
                out / "transfer-target" / f"{tag}-{source}-{target}"),
            "SS(src), source feats": _train(
                tgt.replace(sampler="swift", weights=src["sampler"], swift_features="search"),
                out / "transfer-search" / f"{tag}-{source}-{target}"),
            "SS(self)": _search(tgt, out / "search" / f"{tag}-{target}"),
        }
        for row, cell in cells.items():
            for k in ("last", "early"):
                acc[row][k].append(cell[k])
            if seed == seeds[0] and cell.get("features"):
                lines.append(f"- {name}, {row}: {cell['features']}")
    table = [f"| {name}: {source} -> {target} | {row} | {_ms(acc[row]['last'])} | "
             f"{_ms(acc[row]['early'])} |" for row in ROWS]
    table.append(f"| | (source search picked: {', '.join(origins)}) | | |")
    for line in table:
        print(line, flush=True)
    return table, lines


def _ms(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{100 * statistics.mean(xs):.1f} ± {100 * sd:.1f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="runs/bench/sampler_transfer")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # tiny models: extra threads only contend
    start = time.perf_counter()
    rows, features = [], []
    for name in args.pairs:
        table, lines = run_pair(name, args.seeds, Path(args.out))
        rows += table
        features += lines
    text = "\n".join([
        f"Test accuracy (%), {int(NOISE * 100)}% symmetric label noise, seeds {args.seeds}, "
        "mean ± sample std: last epoch | early-stopped (best validation epoch).", "",
        "| pair | sampler | last epoch | early-stopped |", "|---|---|---|---|", *rows, "",
        f"What the sampler runs said about their features (seed {args.seeds[0]}):", "",
        *features, "",
        f"Total wall time {time.perf_counter() - start:.0f}s (cached cells count 0)."]) + "\n"
    write_text(Path(args.out) / "table.md", text)
    print(text)


if __name__ == "__main__":
    main()
