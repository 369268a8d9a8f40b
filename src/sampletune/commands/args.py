"""Flag types, and the run flags and configuration shared by the ``sampletune`` subcommands.

The flags are generated from the configuration parts' fields
(:func:`sampletune.configs.add_flags`), so every setting a YAML file can hold has a flag.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sampletune.configs import (  # noqa: F401  (re-exported: sampletune.cli.finite_float ...)
    MAX_INT_DIGITS,
    add_flags,
    bounded_int,
    field_names,
    finite_float,
)

if TYPE_CHECKING:
    from sampletune.experiments.config import RunConfig


def add_run_arguments(p: argparse.ArgumentParser, *, sampling: bool = False) -> None:
    """``--config`` and a flag per field of :class:`~sampletune.experiments.RunConfig`'s
    parts (``sampling``: the sampling part's too). Every flag defaults to ``None`` (not
    given): the value comes from ``--config`` or the part's default."""
    from sampletune.augment import AUGMENT_NAMES
    from sampletune.budget.methods import ALL_METHODS
    from sampletune.data.noise import NOISE_TYPES
    from sampletune.experiments.config import (
        RUN_TRAIN,
        SWIFT_FEATURES,
        DataConfig,
        RunConfig,
        SamplingConfig,
    )
    from sampletune.noisy.methods import NOISY_NAMES
    from sampletune.samplers import sampler_names
    from sampletune.train.config import AMP_MODES, LR_SCHEDULES

    p.add_argument("--config", help="YAML file of settings, flat (lr: 0.1) or by part "
                   "(train: {lr: 0.1}); flags override it")
    add_flags(p.add_argument_group("data"), DataConfig(),
              noise_type={"choices": NOISE_TYPES})
    if sampling:
        others = ", ".join(n for n in sampler_names(aliases=False) if n != "uniform")
        add_flags(p.add_argument_group("sampling"), SamplingConfig(),
                  sampler={"help": f"uniform (a shuffled pass per epoch), {others}"},
                  method={"choices": ALL_METHODS, "metavar": "METHOD",
                          "help": "a budgeted-training method (replaces --sampler): "
                          + ", ".join(ALL_METHODS)},
                  noisy={"metavar": "NAME", "help": "a noisy-label baseline (replaces "
                         "--sampler; not with --method): " + ", ".join(NOISY_NAMES)},
                  noise_rate={"metavar": "R"}, augment={"choices": AUGMENT_NAMES},
                  swift_features={"choices": SWIFT_FEATURES})
    g = p.add_argument_group("model and training")
    add_flags(g, RunConfig(), skip=("data", "sampling", "train", "out"))
    add_flags(g, RUN_TRAIN, lr_schedule={"choices": LR_SCHEDULES},
              milestones={"metavar": "M"}, amp={"choices": AMP_MODES})
    add_flags(g, RunConfig(), skip=("data", "sampling", "train", "model"))
    g.add_argument("--restart", action="store_true",
                   help="discard what --out holds and start over")


def config_from_args(args: argparse.Namespace, **extra: tuple[str, ...]
                     ) -> tuple[Any, dict[str, dict[str, Any]]]:
    """The :class:`RunConfig` given by ``--config`` and the flags that were set, and the
    values of the ``extra`` sections (name -> its field names, e.g. a search's settings),
    which a YAML file may hold flat or under the section's name."""
    from sampletune.experiments.config import SECTIONS, RunConfig, load_sections

    names = [n for fields in (*SECTIONS.values(), *extra.values()) for n in fields]
    flags = {k: v for k in names if (v := getattr(args, k, None)) is not None}
    sections = load_sections(args.config, flags, extra)
    return RunConfig.from_sections(sections), {s: sections[s] for s in extra}


@contextlib.contextmanager
def distributed_run(cfg: RunConfig) -> Iterator[RunConfig]:
    """Under ``torchrun``, the process group for the ``with`` block, which gets ``cfg`` on
    this rank's device (``cuda`` -> ``cuda:LOCAL_RANK``); ``cfg`` as is without torchrun."""
    from sampletune.errors import check
    from sampletune.train.distributed import launched_size, process_group

    check(not cfg.download or launched_size() == 1, "download", "every process of a "
          "torchrun job would download at once", "fetch the data once without torchrun")
    with process_group(cfg.resolved_device) as device:
        yield cfg if device == cfg.resolved_device else cfg.replace(device=device)


def parts_from_args(args: argparse.Namespace, parts: dict[str, Any]) -> dict[str, Any]:
    """Each of ``parts`` (section name -> the part's base instance; ``""`` for a section
    written only flat) from ``--config``'s YAML file, a part's fields flat or under its
    section's name, with the flags given on top; validated as the parts validate."""
    from sampletune.configs import build, given, route
    from sampletune.experiments.config import read_yaml

    values = route(read_yaml(args.config),
                   {s: field_names(type(part)) for s, part in parts.items()})
    return {s: build(type(part), {**values[s], **given(args, type(part))}, part)
            for s, part in parts.items()}
