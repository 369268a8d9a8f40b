"""The budgeted-training grid behind ``sampletune budget-table``: run every cell
(data set x augmentation x LR schedule x method x budget x seed), append each finished cell
to ``cells.jsonl`` (a rerun skips finished cells), and render tables shaped like Tables 2
and 3 of budgeted-importance-sampling.txt (markdown and CSV) and the plots of Fig. 1.
"""

from __future__ import annotations

import csv
import io as _strio
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from sampletune import io, rundir
from sampletune.augment import AUGMENT_NAMES, build_augment
from sampletune.budget.measures import mean_std, speedup
from sampletune.budget.methods import (
    ALL_METHODS,
    METHOD_NAMES,
    SUBSET_METHODS,
    TRUNCATED,
    build_method,
    truncated_epochs,
)
from sampletune.data import dataset_names, load_dataset, make_splits
from sampletune.errors import check
from sampletune.models import build_model, model_names
from sampletune.seeding import check_seed
from sampletune.train import TrainConfig, evaluate, progress_bar, seeded_model
from sampletune.train.config import LR_SCHEDULES

FULL = "SGD"  # the full-training reference row (scan-SGD with B = 1)
SCHEDULE_LABEL = {"step": "SLR", "linear": "LLR", "cosine": "cosine", "constant": "constant"}


@dataclass(frozen=True)
class GridSpec:
    """What the grid covers, validated; every field but ``data_dir`` and ``device`` is part
    of a cell's identity. ``sampletune budget-table``'s flags and YAML keys are its fields."""

    dataset: tuple[str, ...] = ("mnist1d",)  # data set name(s); singular, as train's flag
    budgets: tuple[float, ...] = (0.2, 0.3, 0.5)  # B, shares of a full training, in (0, 1]
    methods: tuple[str, ...] = METHOD_NAMES
    lr_schedules: tuple[str, ...] = ("step", "linear")  # step: LR / 10 at 1/3 and 2/3 of T
    augments: tuple[str, ...] = ("none",)  # augmentations (image data only, except none)
    # train the full-training (B = 1) row only for these augmentations (default: every one)
    full_augments: tuple[str, ...] | None = None
    seeds: tuple[int, ...] = (0, 1, 2)  # each cell runs once per seed
    model: str = "mlp"  # mlp, cnn1d, smallcnn, resnet18, wrn28_2, tv:NAME (torchvision)
    epochs: int = 30  # T, epochs of a full training
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 5e-4
    train_subset: int | None = None  # keep only this many training examples
    warmup_epochs: int = 0  # uniform epochs of p-/c-SGD
    data_dir: str | None = None  # folder holding the data set
    device: str = "cpu"  # cpu, cuda, cuda:N; the command also takes auto (cuda if any)

    def __post_init__(self):
        names = {"dataset": ("data set", dataset_names()), "methods": ("method", ALL_METHODS),
                 "lr_schedules": ("LR schedule", LR_SCHEDULES),
                 "augments": ("augmentation", AUGMENT_NAMES)}
        for field, (noun, allowed) in names.items():
            bad = [v for v in getattr(self, field) if v not in allowed]
            check(not bad, field, f"unknown {noun} {bad[0] if bad else ''!r}",
                  ", ".join(allowed))
        for field in (*names, "budgets", "seeds"):
            values = list(getattr(self, field))
            check(bool(values), field, "is empty", "one or more values")
            check(len(set(values)) == len(values), field, f"{values} repeats a value",
                  "distinct values")
        for b in self.budgets:
            check(0 < b <= 1, "budgets", f"{b} is outside (0, 1]", "0 < budget <= 1")
        for seed in self.seeds:
            check_seed(seed, "seeds")
        for a in self.full_augments or ():
            check(a in self.augments, "full_augments", f"{a!r} is not one of the grid's "
                  "augmentations", ", ".join(self.augments))
        check(self.model.startswith("tv:") or self.model in model_names(), "model",
              f"unknown model {self.model!r}", ", ".join(model_names()))
        TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                    weight_decay=self.weight_decay)  # validates the training fields
        for method in [m for m in self.methods if m in TRUNCATED]:
            for b in self.budgets:
                truncated_epochs(method, self.epochs, b, "budgets")
        check(0 <= self.warmup_epochs < self.epochs, "warmup_epochs", f"{self.warmup_epochs} "
              f"is outside [0, {self.epochs})", "0 <= warmup_epochs < epochs")
        check(self.train_subset is None or self.train_subset >= 2, "train_subset",
              f"{self.train_subset} is too small", ">= 2, at most the training set's size")
        if self.data_dir is not None:
            check(Path(self.data_dir).exists(), "data_dir", f"{self.data_dir!r} does not exist")

    def cells(self) -> list[dict]:
        """Every cell as a dict of its identity, full-training references (of the
        ``full_augments``) first."""
        out = []
        for ds in self.dataset:
            for aug in self.augments:
                full = self.full_augments is None or aug in self.full_augments
                for sched in self.lr_schedules:
                    for seed in self.seeds if full else ():
                        out.append(self._cell(ds, aug, sched, FULL, 1.0, seed))
                    for method in self.methods:
                        for b in self.budgets:
                            for seed in self.seeds:
                                out.append(self._cell(ds, aug, sched, method, b, seed))
        return out

    def _cell(self, ds, aug, sched, method, budget, seed) -> dict:
        return {"dataset": ds, "augment": aug, "lr_schedule": sched, "method": method,
                "budget": float(budget), "seed": int(seed), "model": self.model,
                "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                "weight_decay": self.weight_decay, "train_subset": self.train_subset,
                "warmup_epochs": self.warmup_epochs}


def cell_key(cell: dict) -> str:
    """A stable string identifying a cell in ``cells.jsonl``."""
    keys = ("dataset", "augment", "lr_schedule", "method", "budget", "seed", "model", "epochs",
            "batch_size", "lr", "weight_decay", "train_subset", "warmup_epochs")
    return "|".join(f"{k}={cell[k]}" for k in keys)


def _data(spec: GridSpec, dataset: str, seed: int, cache: dict):
    """The splits of ``dataset`` for ``seed`` (no label noise), cached per grid run."""
    if (dataset, seed) not in cache:
        raw = load_dataset(dataset, spec.data_dir)
        cache[(dataset, seed)] = make_splits(raw, seed=seed, noise=0.0,
                                             train_subset=spec.train_subset)
    return cache[(dataset, seed)]


def cell_config(spec: GridSpec, cell: dict) -> TrainConfig:
    """The training settings of ``cell`` (its ``lr_schedule``, ``budget`` and ``seed``): the
    step schedule is the paper's (divide by 10 at 1/3 and 2/3 of training); val/test are
    evaluated once, at the end."""
    return TrainConfig(epochs=spec.epochs, batch_size=spec.batch_size, lr=spec.lr,
                       weight_decay=spec.weight_decay, lr_schedule=cell["lr_schedule"],
                       milestones=(1 / 3, 2 / 3), budget=cell["budget"], seed=cell["seed"],
                       device=spec.device, eval_every=spec.epochs)


def run_cell(cell: dict, spec: GridSpec, data_cache: dict) -> dict:
    """Train one cell (settings from :func:`cell_config`); returns its record (identity +
    measures), with the accuracy on the un-augmented training split at the end
    (``train_acc``: how far the budget let the model fit it)."""
    data = _data(spec, cell["dataset"], cell["seed"], data_cache)
    cfg = cell_config(spec, cell)

    def model_fn():
        return seeded_model(lambda: build_model(spec.model, data.input_shape, data.num_classes),
                            cell["seed"])

    name = "scan-sgd" if cell["method"] == FULL else cell["method"]
    method = build_method(name, data, cfg, augment=cell["augment"],
                          warmup_epochs=spec.warmup_epochs, model_fn=model_fn)
    result = method.train(model_fn(), data, cfg, progress=False)
    f = result.final
    labels = data.train.y.cpu()
    return {**cell, "key": cell_key(cell), "data": data.train.fingerprint(),
            "test_acc": f["test_acc"], "val_acc": f["val_acc"],
            "train_acc": evaluate(result.model, data.train, spec.device)["acc"],
            "majority_acc": float(torch.bincount(labels).max()) / len(labels),
            "wall_time": f["wall_time"], "steps": f["steps"], "used_budget": f["used_budget"],
            "entropy": f["entropy"], "entropy_normalized": f["entropy_normalized"],
            **{k: f[k] for k in ("sb_effective_budget", "sb_extra_forward") if k in f}}


def run_grid(spec: GridSpec, out: str | Path, progress: bool = True,
             restart: bool = False) -> list[dict]:
    """Run every unfinished cell of ``spec``; finished cells live in ``out/cells.jsonl``.

    Cells are keyed by all their settings, so one directory can grow by more cells; what
    the keys leave out (device, package version) is the directory's identity
    (:mod:`sampletune.rundir`; ``restart`` discards earlier cells), and a
    finished cell whose data has changed since (its split's fingerprint) is refused."""
    with rundir.held(out, {"device": spec.device}, restart=restart):
        path = Path(out) / "cells.jsonl"
        io.write_json(Path(out) / "grid.json", asdict(spec))
        records = io.read_jsonl(path, "key")
        check_cells(path, records)
        done = {r["key"]: r for r in records}
        cells = spec.cells()
        todo = [c for c in cells if cell_key(c) not in done]
        cache: dict = {}
        for c in (c for c in cells if cell_key(c) in done):
            fingerprint = _data(spec, c["dataset"], c["seed"], cache).train.fingerprint()
            check(done[cell_key(c)].get("data") == fingerprint, "out",
                  f"{path} holds a cell of {c['dataset']} (seed {c['seed']}) trained on other "
                  "data than it holds now", "--restart, or a new --out")
        for ds in spec.dataset:  # bad data set / augmentation pairs fail before any training
            n = len(_data(spec, ds, spec.seeds[0], cache).train)
            check(spec.batch_size <= n, "batch_size", f"{spec.batch_size} exceeds the {n} "
                  f"examples of {ds}'s training split", f"1..{n}")
            for aug in spec.augments:
                build_augment(aug, _data(spec, ds, spec.seeds[0], cache))
        with progress_bar("budget grid", total=len(cells), completed=len(cells) - len(todo),
                          enabled=progress) as bar:
            for cell in todo:
                record = run_cell(cell, spec, cache)
                io.append_jsonl(path, record)
                done[record["key"]] = record
                bar.advance(f"{cell['method']} B={cell['budget']:g} "
                            f"acc {record['test_acc']:.3f}"
                            + (" (collapsed)" if collapsed(record) else ""))
        return [done[cell_key(c)] for c in cells]


# each cell's measures and what they can be (a journal outside them was edited)
_MEASURE_BOUNDS = {"test_acc": (0.0, 1.0), "val_acc": (0.0, 1.0), "wall_time": (0.0, math.inf),
                   "used_budget": (0.0, math.inf), "entropy": (0.0, math.inf),
                   "entropy_normalized": (0.0, math.inf)}


def check_cells(path: Path, records: list[dict], field: str = "out") -> None:
    """Refuse (one :class:`ConfigError` on ``field``) a ``cells.jsonl`` record whose measures
    are missing, not numbers, or outside what they can be."""
    io.check_records(path, records, {k: (float, int) for k in _MEASURE_BOUNDS}, field,
                     _MEASURE_BOUNDS)


# ---- aggregation and tables ---------------------------------------------------------------
# A cell whose model fits its own training split no better than predicting the most common
# label, plus this margin, has collapsed: a training that diverged without a NaN (a large
# LR, a selection that keeps too few examples) ends there, and its accuracy would otherwise
# be averaged into the row silently. The tables say so.
COLLAPSE_MARGIN = 0.02


def collapsed(record: dict) -> bool:
    """Whether a cell's model ended no better than the majority label on its training
    split (cells recorded before ``majority_acc`` was kept: never)."""
    return "majority_acc" in record and "train_acc" in record and \
        record["train_acc"] <= record["majority_acc"] + COLLAPSE_MARGIN


def aggregate(records: Iterable[dict]) -> list[dict]:
    """One row per (dataset, augment, lr_schedule, method, budget): mean/std over seeds of
    test accuracy (%), wall time, speed-up vs the full training of the same section,
    entropy and used budget."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["dataset"], r["augment"], r["lr_schedule"], r["method"], r["budget"])].append(r)
    full_time = {k[:3]: mean_std([r["wall_time"] for r in v])[0]
                 for k, v in groups.items() if k[3] == FULL}
    rows = []
    for (ds, aug, sched, method, b), rs in groups.items():
        acc_m, acc_s = mean_std([100 * r["test_acc"] for r in rs])
        t_m, _ = mean_std([r["wall_time"] for r in rs])
        row = {"dataset": ds, "augment": aug, "lr_schedule": sched, "method": method,
               "budget": b, "seeds": len(rs), "acc_mean": acc_m, "acc_std": acc_s,
               "time_mean": t_m, "speedup": speedup(t_m, full_time.get((ds, aug, sched), 0.0)),
               "entropy": mean_std([r["entropy"] for r in rs])[0],
               "entropy_normalized": mean_std([r["entropy_normalized"] for r in rs])[0],
               "used_budget": mean_std([r["used_budget"] for r in rs])[0],
               "collapsed": sum(collapsed(r) for r in rs)}
        if all("train_acc" in r for r in rs):  # cells recorded before it was measured lack it
            row["train_acc"] = mean_std([100 * r["train_acc"] for r in rs])[0]
        if "sb_effective_budget" in rs[0]:
            row["sb_effective_budget"] = mean_std([r["sb_effective_budget"] for r in rs])[0]
        rows.append(row)
    return rows


def _fmt(row: dict | None) -> str:
    if row is None:
        return "-"
    text = f"{row['acc_mean']:.2f} ± {row['acc_std']:.2f}"
    if row.get("collapsed"):
        text += f", collapsed in {row['collapsed']}/{row['seeds']}"
    return text


def markdown_tables(rows: Sequence[dict]) -> str:
    """Per data set, a table shaped like Tables 2/3: sections per (augmentation, LR
    schedule), each opening with the full-training SGD (B = 1) row, then one row per method
    with ``mean ± std`` test accuracy (%) per budget, and how many seeds collapsed
    (:func:`collapsed`) where any did. SB's row notes its effective budget
    (its extra forward passes counted at 1/3 of a step, section 3). A data set with no
    budgeted cell yet (an interrupted grid) has one column, of the B = 1 rows."""
    out = []
    by = {(r["dataset"], r["augment"], r["lr_schedule"], r["method"], r["budget"]): r
          for r in rows}
    for ds in _ordered(r["dataset"] for r in rows):
        budgets = sorted({r["budget"] for r in rows if r["dataset"] == ds and r["method"] != FULL})
        out.append(f"### {ds}: test accuracy (%), mean ± std over seeds\n")
        heads = [f"B = {b:g}" for b in budgets] or ["B = 1"]
        out.append("| Method | " + " | ".join(heads) + " |")
        out.append("|---" * (len(heads) + 1) + "|")
        for aug in _ordered(r["augment"] for r in rows if r["dataset"] == ds):
            for sched in _ordered(r["lr_schedule"] for r in rows
                                  if r["dataset"] == ds and r["augment"] == aug):
                label = SCHEDULE_LABEL.get(sched, sched)
                out.append(f"| *{aug} augmentation, {label}* |" + " |" * len(heads))
                full = by.get((ds, aug, sched, FULL, 1.0))
                out.append(f"| SGD - {label} (B = 1) | {_fmt(full)} |" + " |" * (len(heads) - 1))
                methods = _ordered(r["method"] for r in rows if r["dataset"] == ds
                                   and r["augment"] == aug and r["lr_schedule"] == sched
                                   and r["method"] != FULL)
                for m in methods:
                    cells = []
                    for b in budgets:
                        row = by.get((ds, aug, sched, m, b))
                        text = _fmt(row)
                        if row is not None and "sb_effective_budget" in row:
                            text += f" (B_SB≈{row['sb_effective_budget']:.2f})"
                        cells.append(text)
                    out.append(f"| {m} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def csv_table(rows: Sequence[dict]) -> str:
    """Aggregated rows as CSV, one line per data set, augmentation, schedule, method, budget."""
    cols = ["dataset", "augment", "lr_schedule", "method", "budget", "seeds", "acc_mean",
            "acc_std", "collapsed", "train_acc", "time_mean", "speedup", "entropy",
            "entropy_normalized", "used_budget", "sb_effective_budget"]
    buf = _strio.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) and not math.isnan(v) else v)
                         for k, v in r.items()})
    return buf.getvalue()


def _ordered(values: Iterable) -> list:
    return list(dict.fromkeys(values))


# ---- figures --------------------------------------------------------------------------------
def plot_entropy(rows: Sequence[dict], path: str | Path, budget: float | None = None) -> Path:
    """Fig. 1c/d: entropy of the per-example sample counts (normalised by log N) per
    method, augmentation and LR schedule, at ``budget`` (default: 0.3 if run, else the
    smallest)."""
    from sampletune.plots import plt, save_figure

    budgets = sorted({r["budget"] for r in rows if r["method"] != FULL})
    check(bool(budgets), "budgets", "no budgeted cells to plot")
    b = budget if budget is not None else (0.3 if 0.3 in budgets else budgets[0])
    sel = [r for r in rows if r["budget"] == b and r["method"] != FULL]
    datasets = _ordered(r["dataset"] for r in sel)
    height = 1.0 + 0.28 * max(sum(r["dataset"] == ds for r in sel) for ds in datasets)
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), height), squeeze=False)
    for ax, ds in zip(axes[0], datasets, strict=True):
        rs = [r for r in sel if r["dataset"] == ds]
        labels = [f"{r['method']}, {SCHEDULE_LABEL.get(r['lr_schedule'], r['lr_schedule'])}, "
                  f"{r['augment']}" for r in rs]
        ax.barh(range(len(rs)), [r["entropy_normalized"] for r in rs])
        ax.set_yticks(range(len(rs)), labels, fontsize=8)
        ax.invert_yaxis()
        lo = min(r["entropy_normalized"] for r in rs)
        ax.set_xlim(max(0.0, lo - 0.05), 1.0)
        ax.set(xlabel="H(sample counts) / log N", title=f"{ds}, B = {b:g}")
    return save_figure(fig, path)


def plot_subsets(rows: Sequence[dict], path: str | Path) -> Path | None:
    """Fig. 1a/b: test accuracy against budget for unif-SGD, a fixed random subset and the
    core-set, with full training dashed; ``None`` if no fixed-subset cell was run."""
    from sampletune.plots import plt, save_figure

    if not any(r["method"] in SUBSET_METHODS for r in rows):
        return None
    keys = _ordered((r["dataset"], r["augment"], r["lr_schedule"]) for r in rows)
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.5), squeeze=False)
    for ax, (ds, aug, sched) in zip(axes[0], keys, strict=True):
        rs = [r for r in rows
              if (r["dataset"], r["augment"], r["lr_schedule"]) == (ds, aug, sched)]
        for m in ("unif-sgd", *SUBSET_METHODS):
            pts = sorted((r["budget"], r["acc_mean"], r["acc_std"]) for r in rs if r["method"] == m)
            if pts:
                bs, ms, ss = zip(*pts, strict=True)
                ax.errorbar(bs, ms, yerr=ss, marker="o", capsize=3, label=m)
        full = [r for r in rs if r["method"] == FULL]
        if full:
            ax.axhline(full[0]["acc_mean"], color="k", ls="--", label="full training")
        ax.set(xlabel="budget B", ylabel="test accuracy (%)",
               title=f"{ds} {aug} {SCHEDULE_LABEL.get(sched, sched)}")
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def write_report(records: Sequence[dict], out: str | Path) -> tuple[str, str]:
    """Write ``table.md``, ``table.csv``, ``entropy.png`` (with budgeted cells) and
    ``subsets.png`` (with fixed-subset cells) into ``out``; returns (markdown, csv)."""
    out = Path(out)
    rows = aggregate(records)
    md, table_csv = markdown_tables(rows), csv_table(rows)
    io.write_text(out / "table.md", md)
    io.write_text(out / "table.csv", table_csv)
    if any(r["method"] != FULL for r in rows):
        plot_entropy(rows, out / "entropy.png")
    plot_subsets(rows, out / "subsets.png")
    return md, table_csv
