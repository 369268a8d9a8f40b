"""Which configuration library: start-up time and error messages, on RunConfig's fields.

Candidates, each a tiny prototype over the same dataclass (today's ``RunConfig`` fields
plus a ``list[str]`` field, ``features``, as ``swift search`` has):

* ``current``: today's ``RunConfig.from_dict`` (its hand-written ``_coerce``), for the
  errors only; its start-up is ``sampletune --help``'s, timed as is.
* ``handwritten``: argparse flags and a YAML coercion generated from the annotations
  (``typing.get_origin``/``get_args``), validation in ``__post_init__`` with ``check``.
* ``pydantic``: argparse flags of ``type=str``; ``pydantic.TypeAdapter`` validates the
  mapping (``extra="forbid"``) and runs ``__post_init__``.
* ``jsonargparse``: ``add_class_arguments`` plus ``ActionConfigFile`` (YAML built in).
* ``tyro``: ``tyro.cli``; it reads no YAML, so a file's values become its defaults.

Start-up: ``python benchmarks/config_choice.py --candidate NAME --help`` (import the
library, build the parser, print help), median of ``--repeats`` runs in fresh processes,
minus ``python -c pass``; today's ``sampletune --help`` for scale.

Run: ``PYTHONPATH=src:/tmp/cfgbench/site .venv/bin/python benchmarks/config_choice.py``
(the libraries are installed there with ``pip install --target /tmp/cfgbench/site
pydantic jsonargparse tyro``; a missing one is reported as such).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import math
import statistics
import subprocess
import sys
import tempfile
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path

from sampletune.errors import ConfigError, check


@dataclass(frozen=True)
class Fields:
    """RunConfig's fields (and a list[str] one)."""

    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    noise: float = 0.4
    noise_type: str = "symmetric"
    val_noise: bool = False
    val_fraction: float = 0.1
    train_subset: int | None = None
    model: str = "mlp"
    sampler: str = "uniform"
    weights: str | None = None
    method: str | None = None
    noisy: str | None = None
    noise_rate: float | None = None
    augment: str = "none"
    budget: float = 1.0
    epochs: int = 40
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    lr_schedule: str = "step"
    milestones: tuple[float, ...] | None = None
    seed: int = 0
    device: str = "auto"
    out: str | None = None
    features: list[str] = field(default_factory=lambda: ["train_loss", "renormed_entropy"])

    def __post_init__(self):
        check(0.0 <= self.noise < 1.0, "noise", f"{self.noise} is outside [0, 1)",
              "0 <= noise < 1")
        check(0 < self.lr <= 10, "lr", f"{self.lr} is outside (0, 10]", "0 < lr <= 10")


CASES = {  # name -> (YAML mapping, or argv for the CLI cases)
    "YAML wrong type (`lr: fast`)": {"lr": "fast"},
    "YAML unknown key (`bogus: 1`)": {"bogus": 1},
    "YAML list[str] (`features: [loss, grad_norm]`)": {"features": ["loss", "grad_norm"]},
    "YAML out of range (`noise: 1.5`)": {"noise": 1.5},
    "CLI wrong type (`--lr fast`)": ["--lr", "fast"],
    "CLI list[str] (`--features loss grad_norm`)": ["--features", "loss", "grad_norm"],
}


# ------------------------------------------------------------------------------------------
# handwritten: flags and coercion generated from the annotations


def _hw_coerce(name: str, value, tp):
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, __import__("types").UnionType):
        if value is None:
            check(type(None) in args, name, "must be set")
            return None
        return _hw_coerce(name, value, next(a for a in args if a is not type(None)))
    if origin in (list, tuple):
        check(isinstance(value, list | tuple), name, f"{value!r} is not a list")
        return origin(_hw_coerce(name, v, args[0]) for v in value)
    if tp is float:
        check(isinstance(value, int | float) and not isinstance(value, bool), name,
              f"{value!r} is not a number")
        check(math.isfinite(value), name, f"{value!r} is not a finite number")
        return float(value)
    check(isinstance(value, tp) and not (tp is int and isinstance(value, bool)), name,
          f"{value!r} is not {tp.__name__}")
    return value


def handwritten_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="proto", exit_on_error=False)
    hints = typing.get_type_hints(Fields)
    for f in dataclasses.fields(Fields):
        tp = hints[f.name]
        optional = typing.get_origin(tp) in (typing.Union, __import__("types").UnionType)
        base = next(a for a in typing.get_args(tp) if a is not type(None)) if optional else tp
        flag = "--" + f.name.replace("_", "-")
        if base is bool:
            p.add_argument(flag, action="store_true", default=None)
        elif typing.get_origin(base) in (list, tuple):
            p.add_argument(flag, nargs="+", type=typing.get_args(base)[0])
        else:
            p.add_argument(flag, type=base)
    return p


def handwritten(case):
    hints = typing.get_type_hints(Fields)
    if isinstance(case, list):
        ns = handwritten_parser().parse_args(case)
        values = {k: v for k, v in vars(ns).items() if v is not None}
    else:
        values = case
    for k in values:
        check(k in hints, k, "unknown config field", "the fields of --help")
    return Fields(**{k: _hw_coerce(k, v, hints[k]) for k, v in values.items()})


# ------------------------------------------------------------------------------------------
# pydantic: TypeAdapter over the same dataclass


def pydantic_adapter():
    from pydantic import ConfigDict, TypeAdapter

    Fields.__pydantic_config__ = ConfigDict(extra="forbid")  # read by TypeAdapter
    return TypeAdapter(Fields)


def pydantic_parser() -> argparse.ArgumentParser:
    pydantic_adapter()  # built at start-up, as a CLI would
    p = argparse.ArgumentParser(prog="proto", exit_on_error=False)
    for f in dataclasses.fields(Fields):
        nargs = "+" if f.name in ("features", "milestones") else None
        p.add_argument("--" + f.name.replace("_", "-"), nargs=nargs)
    return p


def pydantic(case):
    adapter = pydantic_adapter()
    if isinstance(case, list):
        values = {k: v for k, v in vars(pydantic_parser().parse_args(case)).items()
                  if v is not None}
    else:
        values = case
    return adapter.validate_python(values)


# ------------------------------------------------------------------------------------------
# jsonargparse and tyro


def jsonargparse_parser():
    from jsonargparse import ActionConfigFile, ArgumentParser

    p = ArgumentParser(prog="proto", exit_on_error=False)
    p.add_argument("--config", action=ActionConfigFile)
    p.add_class_arguments(Fields, nested_key=None)
    return p


def jsonargparse(case):
    p = jsonargparse_parser()
    if isinstance(case, list):
        return p.instantiate_classes(p.parse_args(case))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        import yaml

        path.write_text(yaml.safe_dump(case))
        ns = p.parse_args(["--config", str(path)])
    return Fields(**{k: v for k, v in vars(ns).items() if k != "config"})


def tyro(case):
    import tyro as t

    if isinstance(case, list):
        return t.cli(Fields, args=case)
    return t.cli(Fields, args=[], default=Fields(**case))


CANDIDATES = {"handwritten": handwritten, "pydantic": pydantic, "jsonargparse": jsonargparse,
              "tyro": tyro}
PARSERS = {"handwritten": handwritten_parser, "pydantic": pydantic_parser,
           "jsonargparse": jsonargparse_parser}


def current(case):
    from sampletune.experiments.config import RunConfig, _coerce

    if isinstance(case, list):
        from sampletune.cli import main

        main(["train", *case, "--epochs", "0"])
        return "(parsed)"
    if "features" in case:  # RunConfig has no list[str] field: its coercion on one
        return _coerce("features", case["features"], "list[str]")
    return RunConfig.from_dict(case)


def outcome(fn, case) -> str:
    """What ``fn(case)`` returns, raises or prints (first 3 lines, joined with ' / ')."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            value = fn(case)
        text = f"ok: {getattr(value, 'features', value)!r}"
        if err.getvalue().strip():
            text = err.getvalue()
    except SystemExit as exc:
        text = f"exit {exc.code}: " + err.getvalue()
    except ConfigError as exc:
        text = f"ConfigError: {exc}"
    except Exception as exc:  # noqa: BLE001 - the point is to see what each raises
        text = f"{type(exc).__name__}: {exc}"
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    more = f" (+{len(lines) - 3} lines)" if len(lines) > 3 else ""
    return " / ".join(lines[:3]).replace("|", "\\|") + more


def startup(argv: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidate", choices=[*CANDIDATES, "none"])
    ap.add_argument("--repeats", type=int, default=10)
    args, rest = ap.parse_known_args()
    if args.candidate:  # the timed child: import, build the parser, print help
        if args.candidate == "tyro":
            import tyro as t

            with contextlib.suppress(SystemExit):
                t.cli(Fields, args=["--help"])
        elif args.candidate != "none":
            PARSERS[args.candidate]().print_help()
        return
    py, me = sys.executable, str(Path(__file__).resolve())
    base = startup([py, me, "--candidate", "none"], args.repeats)
    print(f"python + this script, no library: {base:.3f}s (median of {args.repeats})")
    st = startup([py, "-m", "sampletune.cli", "--help"], args.repeats)
    print(f"today's `sampletune --help`: {st:.3f}s\n")
    print("| candidate | --help over baseline (s) | "
          + " | ".join(CASES) + " |")
    print("|---" * (len(CASES) + 2) + "|")
    for name, fn in {"current": current, **CANDIDATES}.items():
        try:
            if name not in ("current", "handwritten"):
                __import__(name)
        except ImportError:
            print(f"| {name} | not installed |" + " |" * len(CASES))
            continue
        t = "(today's)" if name == "current" else \
            f"{startup([py, me, '--candidate', name], args.repeats) - base:+.3f}"
        print(f"| {name} | {t} | " + " | ".join(outcome(fn, c) for c in CASES.values()) + " |")


if __name__ == "__main__":
    main()
