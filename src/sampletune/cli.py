"""The ``sampletune`` command line.

Every command validates its input before any work; a bad value prints one line naming
the field and what is allowed, and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

from sampletune.commands.args import (  # noqa: F401  (re-exported: sampletune.cli.finite_float ...)
    MAX_INT_DIGITS,
    add_run_arguments,
    bounded_int,
    config_from_args,
    distributed_run,
    finite_float,
)
from sampletune.errors import ConfigError, check

_SUBCOMMAND_DESTS = ("command", "swift_command", "autosampling_command")
DISTRIBUTED_COMMANDS = ("train", "swift search")  # what runs under torchrun


class ArgumentParser(argparse.ArgumentParser):
    """``argparse`` whose errors are :class:`ConfigError`: ``main`` prints them as the one
    line ``sampletune: error: FIELD: problem (allowed: ...)`` and exits 2, like every other
    input error (argparse's own form is two lines: usage and message). Subcommand parsers
    inherit the class. Used outside ``main``, ``parse_args`` raises the ConfigError."""

    def error(self, message: str):
        raise _argparse_error(message, self)

    def _get_values(self, action, arg_strings):
        # Python 3.11's argparse drops a lone "--" ("--rounds=--") and stores [] unchecked
        if action.option_strings and arg_strings == ["--"] and action.nargs in (None, "+"):
            raise argparse.ArgumentError(action, "expected one argument")
        return super()._get_values(action, arg_strings)


def _field(name: str) -> str:
    """A flag or dest as a config field name: ``--noise-type`` -> ``noise_type``."""
    name = name.split("/")[-1].lstrip("-").replace("-", "_")
    if name in _SUBCOMMAND_DESTS:
        return "command"
    return name if re.fullmatch(r"[a-z_]+", name) else "arguments"


def _argparse_error(message: str, parser: argparse.ArgumentParser) -> ConfigError:
    """Turn one of argparse's messages into a ConfigError naming the flag."""
    m = re.fullmatch(r"argument (\S+): (.*)", message, re.S)
    if m:
        field, problem = _field(m.group(1)), m.group(2)
        choice = re.fullmatch(r"invalid choice: (.*) \(choose from (.*)\)", problem, re.S)
        if choice:
            allowed = ", ".join(c.strip("'") for c in choice.group(2).split(", "))
            return ConfigError(field, f"invalid choice {choice.group(1)}", allowed)
        bad = re.fullmatch(r"invalid (\w+) value: (.*)", problem, re.S)
        if bad:
            noun = "an integer" if bad.group(1) in ("int", "bounded_int") else "a number"
            return ConfigError(field, f"{bad.group(2)} is not {noun}")
        if problem.startswith("expected"):
            return ConfigError(field, "needs a value" if "one argument" in problem
                               else problem.replace("argument", "value"))
        return ConfigError(field, " ".join(problem.split()))
    m = re.fullmatch(r"the following arguments are required: (.*)", message, re.S)
    if m:
        first = m.group(1).split(", ")[0]
        field = _field(first)
        if field == "command":
            sub = next((a for a in parser._actions
                        if isinstance(a, argparse._SubParsersAction)), None)
            allowed = ", ".join(sub.choices) if sub else None
            return ConfigError(field, "a subcommand is required", allowed)
        return ConfigError(field, "is required")
    m = re.fullmatch(r"unrecognized arguments: (.*)", message, re.S)
    if m:
        return ConfigError("arguments", f"unrecognized {m.group(1)!r}",
                           "the flags that --help lists")
    m = re.fullmatch(r"ambiguous option: (\S+) could match (.*)", message, re.S)
    if m:
        return ConfigError("arguments", f"ambiguous option {m.group(1)!r}", m.group(2))
    return ConfigError("arguments", " ".join(message.split()))


def _cmd_train(args: argparse.Namespace) -> int:
    from sampletune.experiments import run_train
    from sampletune.train.distributed import current_world

    cfg, _ = config_from_args(args)
    with distributed_run(cfg) as cfg:  # under torchrun: one rank each
        result = run_train(cfg, progress=not args.quiet, restart=args.restart,
                           tensorboard=args.tensorboard)
        if current_world().rank != 0:
            return 0
    f = result.final
    what = f"{cfg.method} (B={cfg.budget:g})" if cfg.method else cfg.noisy or cfg.sampler
    print(f"{what} on {cfg.dataset}: val acc {f['val_acc']:.4f}, "
          f"test acc {f['test_acc']:.4f}, {f['wall_time']:.1f}s"
          + (f" ({f['cost_trainings']:g} trainings)" if "cost_trainings" in f else "")
          + (f"  ->  {cfg.out}" if cfg.out else ""))
    if "best_epoch" in f:
        print(f"  early stopping: best val acc {f['best_val_acc']:.4f} at epoch "
              f"{f['best_epoch']}" + (f", test acc {f['best_test_acc']:.4f}"
                                      if "best_test_acc" in f else ""))
    if "swift_features" in f:
        pre = f.get("pretrained")
        print(f"  sampler features: {f['swift_features']}" + (
            f"; pre-training early-stopped at epoch {pre['best_epoch']} (val acc "
            f"{pre['best_val_acc']:.4f}, {pre['wall_time']:.1f}s)" if pre else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from sampletune.commands.autosampling import register as register_autosampling
    from sampletune.commands.budget import register as register_budget
    from sampletune.commands.demo import register as register_demo
    from sampletune.commands.report import register as register_report
    from sampletune.commands.swift import register as register_swift  # registers --sampler swift

    parser = ArgumentParser(
        prog="sampletune", description="Learn how to sample training data, and train with it.")
    parser.add_argument("--threads", type=bounded_int, help="torch CPU threads (default: torch's; "
                        "1 is fastest for small models on few cores)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model with a sampler")
    add_run_arguments(p, sampling=True)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard events "
                   "to OUT/tb (needs --out and pip install 'sampletune[tensorboard]')")
    p.set_defaults(func=_cmd_train)

    for register in (register_demo, register_swift, register_autosampling, register_budget,
                     register_report):
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        from sampletune.train.distributed import launched_size

        command = " ".join(c for c in (args.command, getattr(args, "swift_command", None)) if c)
        check(command in DISTRIBUTED_COMMANDS or launched_size() == 1, "command",
              f"{command!r} does not run distributed (torchrun with more than one process)",
              ", ".join(DISTRIBUTED_COMMANDS))
        if args.threads is not None:
            cpus = os.cpu_count() or 1
            if not 1 <= args.threads <= cpus:  # torch crashes on absurd thread counts
                raise ConfigError("threads", f"{args.threads} is outside [1, {cpus}]",
                                  f"1..{cpus} (this machine's CPUs)")
            import torch

            torch.set_num_threads(args.threads)
        return args.func(args)
    except ConfigError as err:
        print(f"sampletune: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sampletune: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (`... | head`)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush is silent
        return 141


if __name__ == "__main__":
    sys.exit(main())
