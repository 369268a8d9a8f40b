"""Why ordered SGD collapses at B = 0.5 with the linear LR schedule on MNIST-1D
(``budgeted.md``, table2-mnist1d): the grid's cell (cnn1d, T = 100, so 50 truncated epochs)
rerun with a record per epoch of OSGD's q, the learning rate, the running training accuracy
that sets q, and test accuracy; under both LR schedules and with the q schedule cut short
(q never below s/8, or s/4), 3 seeds.

    PYTHONPATH=src .venv/bin/python benchmarks/osgd_collapse.py
"""

from __future__ import annotations

import argparse
import dataclasses

import torch
from budgeted import grids  # this folder is on sys.path as a script

from sampletune.budget import build_method
from sampletune.budget.measures import mean_std
from sampletune.budget.table import cell_config
from sampletune.data import load_dataset, make_splits
from sampletune.models import build_model
from sampletune.selection import OrderedSGD
from sampletune.selection.ordered_sgd import OSGD_SCHEDULE
from sampletune.train import seeded_model

# q schedules: the authors' rule, and the same without its last one or two rungs
SCHEDULES = {"s/16 (default)": OSGD_SCHEDULE, "floor s/8": OSGD_SCHEDULE[1:],
             "floor s/4": OSGD_SCHEDULE[2:]}


class EpochLog:
    """Per epoch: q, the LR at its start, the running training accuracy and the test
    accuracy (an observer and epoch observer of the training loop)."""

    def __init__(self, selector: OrderedSGD):
        self.selector, self.rows = selector, []
        self.correct = self.seen = 0

    def on_batch(self, report) -> None:
        self.correct += int(report.correct.sum())
        self.seen += len(report.correct)

    def on_epoch_end(self, record: dict, is_best: bool) -> None:
        self.rows.append({"epoch": record["epoch"], "q": self.selector.q, "lr": record["lr"],
                          "train_acc": 100 * self.correct / self.seen,
                          "test_acc": 100 * record["test_acc"]})
        self.correct = self.seen = 0


def run(spec, schedule: str, q_schedule: tuple, seed: int) -> list[dict]:
    """One OSGD run of the grid's B = 0.5 cell; returns its per-epoch rows."""
    data = make_splits(load_dataset(spec.dataset[0], spec.data_dir), seed=seed, noise=0.0,
                       train_subset=spec.train_subset)
    cfg = cell_config(spec, {"lr_schedule": schedule, "budget": 0.5, "seed": seed}
                      ).replace(eval_every=1)
    selector = OrderedSGD(cfg.batch_size, q_schedule)
    log = EpochLog(selector)
    method = dataclasses.replace(build_method("osgd", data, cfg), selector=selector,
                                 observers=[selector, log])
    model = seeded_model(lambda: build_model(spec.model, data.input_shape, data.num_classes),
                         seed)
    method.train(model, data, cfg, progress=False)
    return log.rows


def summary(rows: list[dict], batch: int) -> str:
    """Final and lowest test accuracy after q first drops below s/4, and where q changed."""
    changes = [r for i, r in enumerate(rows) if i == 0 or r["q"] != rows[i - 1]["q"]]
    steps = ", ".join(f"q={r['q']} at epoch {r['epoch']} (lr {r['lr']:.3f}, prev train acc "
                      f"{rows[max(r['epoch'] - 1, 0)]['train_acc']:.1f}%)" for r in changes[1:])
    late = [r for r in rows if r["q"] < batch // 4]
    low = min(late, key=lambda r: r["test_acc"]) if late else None
    worst = (f"; lowest test acc with q < s/4: {low['test_acc']:.1f}% at epoch {low['epoch']}"
             if low else "")
    return f"final {rows[-1]['test_acc']:.2f}%; {steps or 'q never shrinks'}{worst}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = grids(quick=False)["table2-mnist1d"]
    runs = [("linear", name) for name in SCHEDULES] + [("step", "s/16 (default)")]
    finals = {}
    for lr_schedule, name in runs:
        print(f"## OSGD, B = 0.5, {lr_schedule} LR, q schedule {name}\n")
        for seed in args.seeds:
            rows = run(spec, lr_schedule, SCHEDULES[name], seed)
            finals.setdefault((lr_schedule, name), []).append(rows[-1]["test_acc"])
            print(f"- seed {seed}: {summary(rows, spec.batch_size)}")
            print("  - test acc every 5 epochs: " + " ".join(
                f"{r['test_acc']:.0f}" for r in rows[4::5]))
        print()
    print("| LR | q schedule | test acc (%), mean ± std | per seed |\n|---|---|---|---|")
    for (lr_schedule, name), accs in finals.items():
        m, s = mean_std(accs)
        print(f"| {lr_schedule} | {name} | {m:.2f} ± {s:.2f} | "
              + ", ".join(f"{a:.2f}" for a in accs) + " |")


if __name__ == "__main__":
    main()
