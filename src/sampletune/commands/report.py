"""``sampletune report RUN_DIR``: the report of a finished run directory, after the fact.

The kind of run is told by the files it holds:

- an AutoSampling search (``search.json`` and ``curves.json``): final metrics and the
  convergence figure (:func:`sampletune.autosampling.plots.convergence`);
- a ``swift search`` (``report.json``): its markdown again
  (:func:`sampletune.experiments.swift_pipeline.report_markdown`);
- a ``budget-table`` folder (``cells.jsonl``): its tables and figures
  (:func:`sampletune.budget.table.write_report`);
- a ``train`` run (``summary.json`` and ``metrics.jsonl``): final and best-validation-epoch
  metrics and the learning curve (:func:`sampletune.plots.learning_curves`).

The markdown is printed and written to ``RUN_DIR/report.md`` with the figures (``--no-write``
writes nothing). Files are read with :mod:`sampletune.io` (nothing is unpickled); a folder
of no known kind, or with damaged files, is a one-line :class:`ConfigError` on ``run``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sampletune import io
from sampletune.errors import ConfigError, check

KINDS = "a run directory of train, swift search, budget-table or autosampling search"
METRIC_COLUMNS = ("train_loss", "val_loss", "val_acc", "test_loss", "test_acc")


def register(subparsers) -> None:
    """Add ``report`` to the ``sampletune`` subcommands."""
    p = subparsers.add_parser(
        "report", help="render the report of a finished run directory",
        description="Print the markdown report of a finished run (train, swift search, "
        "budget-table or autosampling search) and write it to RUN/report.md with its figures.")
    p.add_argument("run", help="the run directory")
    p.add_argument("--no-write", action="store_true",
                   help="only print the markdown; write no file")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    run = Path(args.run)
    md, written = render(run, write=not args.no_write)
    print(md)
    if written:
        print(f"written in {run}/: " + ", ".join(p.name for p in written))
    return 0


def run_kind(run: Path) -> str:
    """``autosampling``, ``swift``, ``budget`` or ``train``, from the files ``run`` holds."""
    check(run.is_dir(), "run", f"{str(run)!r} is not a folder", KINDS)
    if (run / "search.json").is_file() and (run / "curves.json").is_file():
        return "autosampling"
    if (run / "report.json").is_file():
        return "swift"
    if (run / "cells.jsonl").is_file():
        return "budget"
    if (run / "summary.json").is_file() and (run / "metrics.jsonl").is_file():
        return "train"
    raise ConfigError("run", f"{run} holds no finished run (no summary.json, report.json, "
                      "cells.jsonl or search.json)", KINDS)


def render(run: str | Path, write: bool = True) -> tuple[str, list[Path]]:
    """The markdown report of ``run`` and the files written (``report.md`` and figures;
    none unless ``write``)."""
    run = Path(run)
    kind = run_kind(run)
    try:
        md, written = _RENDERERS[kind](run, write)
        if write:
            io.write_text(run / "report.md", md)
            written.insert(0, run / "report.md")
    except ConfigError:
        raise
    except OSError as err:  # e.g. a figure's or report.md's name taken by a folder
        raise ConfigError("run", f"cannot write the report into {run} "
                          f"({io.describe_error(err)})", "a run directory you can write to"
                          ) from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, ZeroDivisionError,
            OverflowError) as err:  # a file that reads as JSON but is not what the run wrote
        raise ConfigError("run", f"{run} holds damaged {kind} files "
                          f"({io.describe_error(err)})", KINDS) from None
    return md, written


def _table(rows: list[tuple[str, dict]], columns) -> list[str]:
    """A markdown table: one row per (label, record), a column per key any record has."""
    cols = [c for c in columns if any(c in r for _, r in rows)]
    lines = ["| | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for label, r in rows:
        lines.append(f"| {label} | " + " | ".join(
            f"{float(r[c]):.4f}" if c in r else "-" for c in cols) + " |")
    return lines


def _train(run: Path, write: bool) -> tuple[str, list[Path]]:
    from sampletune.plots import learning_curves
    from sampletune.train.loop import best_record

    summary = io.read_json(run / "summary.json", "run")
    history = io.read_jsonl(run / "metrics.jsonl", "epoch", sequential=True, field="run")
    check(bool(history), "run", f"{run}/metrics.jsonl holds no epoch", KINDS)
    io.check_records(run / "metrics.jsonl", history, {"train_loss": (float, int)}, "run")
    cfg = summary["config"]
    name = cfg.get("method") or cfg.get("noisy") or cfg.get("sampler") or "uniform"
    last, best = history[-1], best_record(history)
    rows = [(f"last epoch ({last['epoch']})", last)]
    if best is not None:
        rows.append((f"best validation epoch ({best['epoch']})", best))
    lines = [f"# {name}: {cfg['model']} on {cfg['dataset']}, noise {cfg['noise']}, "
             f"seed {cfg['seed']}", "", *_table(rows, METRIC_COLUMNS), "",
             f"{len(history)} of {summary.get('epochs', cfg['epochs'])} epochs, "
             f"{float(summary.get('wall_time', last.get('time', 0.0))):.1f}s."]
    if "swift_features" in summary:
        lines.append(f"Sampler features: {summary['swift_features']}.")
    written = []
    if write:
        written.append(learning_curves({name: history}, run / "learning_curve.png",
                                       title=f"{cfg['model']} on {cfg['dataset']}, "
                                       f"noise {cfg['noise']}"))
        lines.append("")
        lines.append("![learning curve](learning_curve.png)")
    return "\n".join(lines) + "\n", written


def _swift(run: Path, write: bool) -> tuple[str, list[Path]]:
    from sampletune.experiments.swift_pipeline import report_markdown

    report = io.read_json(run / "report.json", "run")
    check(isinstance(report, dict) and "search" in report, "run",
          f"{run}/report.json is not a swift search report", KINDS)
    return report_markdown(report), []


def _budget(run: Path, write: bool) -> tuple[str, list[Path]]:
    from sampletune.budget.table import aggregate, check_cells, markdown_tables, write_report

    path = run / "cells.jsonl"
    records = io.read_jsonl(path, "key", field="run")
    check(bool(records), "run", f"{path} holds no finished cell", KINDS)
    check_cells(path, records, "run")
    if not write:
        return markdown_tables(aggregate(records)), []
    md, _ = write_report(records, run)
    written = [run / name for name in ("table.md", "table.csv", "entropy.png", "subsets.png")
               if (run / name).exists()]
    return md, written


def _autosampling(run: Path, write: bool) -> tuple[str, list[Path]]:
    from sampletune.autosampling.plots import convergence
    from sampletune.train.loop import best_record

    search = io.read_json(run / "search.json", "run")
    curves = io.read_json(run / "curves.json", "run")
    check(isinstance(curves, list) and bool(curves), "run",
          f"{run}/curves.json holds no epoch", KINDS)
    exploration = search["search"]["exploration"]
    last = curves[-1]
    best = best_record(curves)
    rows = [(f"last epoch ({last['epoch']})", last)]
    if best is not None:
        rows.append((f"best validation epoch ({best['epoch']})", best))
    lines = [f"# AutoSampling search ({exploration}): {run.name}", "",
             *_table(rows, METRIC_COLUMNS), "",
             f"{len(curves)} epochs, {int(last['worker_epochs'])} worker-epochs, "
             f"{float(last['time']):.1f}s."]
    written = []
    if write:
        written.append(convergence({exploration: curves}, run / "convergence.png"))
        lines += ["", "![convergence](convergence.png)"]
    return "\n".join(lines) + "\n", written


_RENDERERS = {"train": _train, "swift": _swift, "budget": _budget,
              "autosampling": _autosampling}
