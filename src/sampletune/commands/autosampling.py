"""``sampletune autosampling {search, replay, plot}``.

- ``search``: run AutoSampling; rerun the same command to resume an interrupted search.
- ``replay``: train a (possibly different) model on a recorded schedule, DYNAMIC (exact
  replay) or STATIC (i.i.d. draws from the final distribution): Tables 9 and 10.
- ``plot``: convergence curves of several searches in one figure (Fig. 5).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sampletune.autosampling.algorithm import EXPLORATIONS

MAX_WORKERS = 1024
MAX_STAGES = 1000


def register(subparsers) -> None:
    """Add the ``autosampling`` command and its subcommands."""
    from sampletune.autosampling.search import ENGINES, SearchConfig
    from sampletune.commands.args import add_flags, add_run_arguments

    top = subparsers.add_parser("autosampling", help="AutoSampling: search a sampling schedule")
    sub = top.add_subparsers(dest="autosampling_command", required=True)

    p = sub.add_parser("search", help="search a schedule with a population of workers")
    add_run_arguments(p)
    add_flags(p.add_argument_group("AutoSampling (defaults: the paper's; in a YAML file flat "
                                   "or under search:)"), SearchConfig(),
              exploration={"choices": EXPLORATIONS}, engine={"choices": ENGINES})
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("replay", help="train on a recorded schedule (DYNAMIC) or its "
                       "distribution (STATIC), with any model")
    add_run_arguments(p)
    p.add_argument("--schedule", required=True, help="schedule.npz of a search")
    p.add_argument("--mode", choices=("dynamic", "static"), default="dynamic")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("plot", help="convergence curves of several searches (Fig. 5)")
    p.add_argument("runs", nargs="+", help="run directories of searches")
    p.add_argument("--key", default="test_acc", help="curve to plot (test_acc, val_acc, ...)")
    p.add_argument("--output", default="convergence.png", help="PNG file to write")
    p.set_defaults(func=_cmd_plot)


def _cmd_search(args: argparse.Namespace) -> int:
    from sampletune.autosampling.search import SearchConfig, search
    from sampletune.commands.args import config_from_args
    from sampletune.configs import build, field_names
    from sampletune.errors import check
    from sampletune.experiments import load_data
    from sampletune.experiments.run import run_identity

    _config_sections(args, search=field_names(SearchConfig))
    cfg, extra = config_from_args(args, search=field_names(SearchConfig))
    scfg = build(SearchConfig, extra["search"])
    check(scfg.workers <= MAX_WORKERS, "workers", f"{scfg.workers} is too many (each holds "
          "a model and its optimizer)", f"1..{MAX_WORKERS}")
    check(scfg.stages <= MAX_STAGES, "stages", f"{scfg.stages} loss snapshots is too many "
          "(at most one per epoch is kept)", f"1..{MAX_STAGES}")
    check(scfg.exploration != "mixture" or scfg.warmup < cfg.epochs, "warmup",
          f"{scfg.warmup} warm-up epochs leave none of the {cfg.epochs} to explore",
          f"0..{cfg.epochs - 1} (< epochs)")
    out = Path(cfg.out or f"runs/autosampling-{cfg.dataset}-{scfg.exploration}-s{cfg.seed}")
    data = load_data(cfg)
    result = search(cfg.model, data, cfg.train_config(), scfg, out, progress=not args.quiet,
                    settings={"run": run_identity(cfg, data)}, restart=args.restart)
    f = result.final
    print(f"autosampling {scfg.exploration} on {cfg.dataset}: val acc {f['val_acc']:.4f}, "
          f"test acc {f['test_acc']:.4f}, {f['worker_epochs']} worker-epochs, "
          f"{f['wall_time']:.1f}s  ->  {out}")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from sampletune import io, rundir
    from sampletune.autosampling.replay import ScheduleSampler, static_sampler
    from sampletune.commands.args import config_from_args
    from sampletune.errors import check
    from sampletune.experiments import load_data, new_model
    from sampletune.experiments.run import run_identity, write_summary
    from sampletune.train import train

    in_yaml = _config_sections(args)["train"]
    cfg, _ = config_from_args(args)
    schedule = _load_schedule(args.schedule)
    recorded = {"epochs": schedule.num_epochs, "batch_size": schedule.batch_size}
    cfg = cfg.replace(sampler=f"autosampling-{args.mode}",  # the recorded values, unless set
                      **{k: v for k, v in recorded.items()
                         if getattr(args, k) is None and k not in in_yaml})
    data = load_data(cfg)
    size = (f"{schedule.num_examples} examples, not {len(data.train)}"
            if len(data.train) != schedule.num_examples else
            f"{len(data.train)} examples in both, but its labels differ in order or value")
    check(len(data.train) == schedule.num_examples and schedule.split in
          ("", data.train.fingerprint()), "schedule",
          f"was recorded on another training split ({size}); use the search's --dataset, "
          "--seed, --noise, --noise-type, --val-fraction and --train-subset")
    if args.mode == "dynamic":
        check(cfg.epochs <= schedule.num_epochs, "epochs",
              f"{cfg.epochs} exceeds the {schedule.num_epochs} recorded epochs",
              f"<= {schedule.num_epochs}")
        check(cfg.batch_size == schedule.batch_size, "batch_size",
              f"{cfg.batch_size} differs from the recorded {schedule.batch_size}; "
              "a DYNAMIC replay keeps the recorded mini-batches", str(schedule.batch_size))
        sampler = ScheduleSampler(schedule, seed=cfg.seed)
    else:
        sampler = static_sampler(schedule, seed=cfg.seed)
    out = Path(cfg.out) if cfg.out else None
    digest = io.digest(schedule.indices().tobytes())
    identity = {**run_identity(cfg, data), "mode": args.mode, "schedule": digest}
    with rundir.held(out, identity, restart=args.restart):
        if out is not None:
            io.write_json(out / "config.json", {**cfg.to_dict(), "schedule": str(args.schedule)})
        result = train(new_model(cfg, data), data, sampler, cfg.train_config(), run_dir=out,
                       progress=not args.quiet, description=f"replay {args.mode}")
        if out is not None:
            write_summary(out, cfg, result)
    f = result.final
    print(f"{args.mode} replay, {cfg.model} on {cfg.dataset}: val acc {f['val_acc']:.4f}, "
          f"test acc {f['test_acc']:.4f}, {f['wall_time']:.1f}s"
          + (f"  ->  {out}" if out else ""))
    return 0


def _config_sections(args: argparse.Namespace, **extra: tuple[str, ...]) -> dict:
    """``--config``'s values by section (flags not included; ``extra`` as in
    :func:`~sampletune.commands.args.config_from_args`). The sampling part (sampler,
    augment, method, ...) is train's: a value other than its default is refused, not
    dropped."""
    from sampletune.configs import coerce, hints
    from sampletune.errors import check
    from sampletune.experiments.config import SamplingConfig, load_sections

    sections = load_sections(args.config, {}, extra)
    default = SamplingConfig()
    for name, value in sections["sampling"].items():
        check(coerce(name, value, hints(SamplingConfig)[name]) == getattr(default, name), name,
              f"{value!r} is only used by train", "leave it out of --config")
    return sections


def _load_schedule(path: str):
    """A recorded schedule, with any unreadable file as a one-line error."""
    import zipfile

    from sampletune.autosampling.schedule import RecordedSchedule
    from sampletune.errors import ConfigError, check

    check(Path(path).is_file(), "schedule", f"{path!r} is not a file",
          "the schedule.npz of an autosampling search")
    try:
        return RecordedSchedule.load(path)
    except ConfigError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as err:
        raise ConfigError("schedule", f"cannot read {path} as a recorded schedule: "
                          f"{type(err).__name__}: {err}") from None


def _cmd_plot(args: argparse.Namespace) -> int:
    from sampletune import io
    from sampletune.autosampling.plots import convergence
    from sampletune.errors import ConfigError, check

    check(not Path(args.output).is_dir(), "output", f"{args.output!r} is a folder",
          "a .png file to write")
    check(Path(args.output).suffix.lower() == ".png", "output", f"{args.output!r} does not "
          "end in .png (the figure is written as PNG)", "a .png file to write")
    curves = {}
    for run in map(Path, args.runs):
        check((run / "curves.json").is_file() and (run / "search.json").is_file(), "runs",
              f"{run} has no curves.json and search.json", "run folders of searches")
        try:
            search = io.read_json(run / "search.json", "runs")
            records = io.read_json(run / "curves.json", "runs")
            have = set(records[0]) if records else set()
            # a search writes report.json when it ends: without it the curves stop early
            planned = (search.get("train") or {}).get("epochs", "?")
            state = "" if (run / "report.json").is_file() else \
                f", unfinished: {len(records)} of {planned} epochs"
            label = base = f"{search['search']['exploration']} ({run.name}{state})"
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
            raise ConfigError("runs", f"{run} holds unreadable search files: "
                              f"{type(err).__name__}: {err}") from None
        check(args.key in have, "key", f"{args.key!r} is not a curve of {run}",
              ", ".join(sorted(k for k in have if k != "epoch")))
        if label in curves:  # a folder name given before: add the run's position
            label = f"{base} #{len(curves) + 1}"
        curves[label] = records
    print(convergence(curves, args.output, key=args.key))
    return 0
