"""The sampler search: outer loop (Algorithm 1) and inner loop (section 3.4).

Outer loop: an agent proposes a cube point, it becomes a sampler ``z`` (params.py), the inner
loop scores it, the agent is told; ``parallel_trials`` of them in flight on an engine
(in-process, a process pool or Ray: :mod:`sampletune.swift.engines`), the search core
(:mod:`sampletune.swift.trials`) keeping the trials the same whatever the engine. Every trial
is journalled in ``trials.jsonl`` as it is proposed, sent to the engine and told (fsynced);
rerunning with the same settings replays the file through the agent, runs again the trials
that were in flight and continues, reaching exactly the result of an uninterrupted search.
The search directory is claimed (:mod:`sampletune.rundir`) with the settings in
``search.json``: other settings, or a second process, are refused.

Distributed (``torchrun``, :mod:`sampletune.train.distributed`): every rank runs the search
in step on the in-process engine, one trial at a time, each fine-tune data-parallel; rank
0 claims the directory and writes the journal, and every rank takes rank 0's proposals,
scores and pick (:mod:`sampletune.swift.trials`).

Inner loop (:class:`FineTuner`): a copy of ``w_share`` (the uniformly trained model) is
fine-tuned for ``E_f`` epochs with examples drawn by ``tau`` and scored by validation
accuracy, with the same seed in every trial (common random numbers). Budget: each fine-tune
epoch draws ``round(N * finetune_budget)`` examples
(``finetune_budget = 1``: the paper's full epochs), so a search costs about
``E_o * E_f * finetune_budget`` epochs; :func:`finetune_budget_for` picks the budget that
keeps the search within a given number of full trainings.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from sampletune import io, rundir
from sampletune.data import DataSplits
from sampletune.errors import ConfigError, check
from sampletune.samplers import WeightedSampler, budget_samples
from sampletune.swift.agents import AGENTS, make_agent
from sampletune.swift.engines import EngineConfig, make_engine
from sampletune.swift.family import (
    GRAD_FEATURE,
    SEARCH_FEATURES,
    TRANSFORMS,
    InvalidSampler,
    SwiftFamily,
)
from sampletune.swift.params import SwiftParams, SwiftSpace, cube_dim
from sampletune.swift.trials import Journal, run_trials, wall_time
from sampletune.train import TrainConfig, Trainer, progress_bar
from sampletune.train.distributed import current_world

TRIALS_FILE = "trials.jsonl"
SEARCH_FILE = "search.json"
MAX_PARALLEL_TRIALS = 1024


@dataclass(frozen=True)
class SearchConfig:
    """Settings of one search (defaults: the paper's, section 4).

    ``finetune_lr_scale`` multiplies the training LR for the fine-tune, whose LR schedule
    (the training's kind) spans the ``E_f`` fine-tune epochs. ``parallel_trials`` (q) trials
    are in flight at a time (:mod:`sampletune.swift.trials`); q = 1 is the sequential search.
    """

    rounds: int = 40  # E_o
    finetune_epochs: int = 5  # E_f
    segments: int = 4  # S
    features: tuple[str, ...] = SEARCH_FEATURES
    transform: str = "cgf"
    grad_feature: str = GRAD_FEATURE  # what cgf weighs by (eq. 10)
    agent: str = "bo"
    finetune_budget: float = 1.0
    finetune_lr_scale: float = 1.0
    references: bool = True  # the reference samplers are the first trials (reference.py)
    refine: bool = True  # retrain the cut on the Swift model's losses (reference.py)
    seed: int = 0
    agent_options: dict = field(default_factory=dict)
    parallel_trials: int = 1  # q

    def __post_init__(self):
        object.__setattr__(self, "features", tuple(self.features))
        check(self.rounds >= 1, "rounds", f"{self.rounds} must be positive", ">= 1")
        check(self.finetune_epochs >= 1, "finetune_epochs", f"{self.finetune_epochs} must be "
              "positive", ">= 1")
        check(self.segments >= 1, "segments", f"{self.segments} must be positive", ">= 1")
        check(len(self.features) >= 1, "features", "needs at least one feature")
        check(self.transform in TRANSFORMS, "transform", f"unknown transform "
              f"{self.transform!r}", ", ".join(TRANSFORMS))
        check(self.agent in AGENTS, "agent", f"unknown agent {self.agent!r}", ", ".join(AGENTS))
        check(0 < self.finetune_budget <= 1, "finetune_budget",
              f"{self.finetune_budget} is outside (0, 1]")
        check(self.finetune_lr_scale > 0, "finetune_lr_scale", "must be positive", "> 0")
        check(1 <= self.parallel_trials <= MAX_PARALLEL_TRIALS, "parallel_trials",
              f"{self.parallel_trials} is out of range", f"1..{MAX_PARALLEL_TRIALS}")

    @property
    def dim(self) -> int:
        return cube_dim(self.segments, len(self.features))

    def to_dict(self) -> dict:
        """The settings as JSON (the search's identity). ``parallel_trials`` only when it is
        not 1 and ``refine`` only when it is off: a sequential search's trials are those of
        earlier versions, whose run directories then resume (and gain the refinement)."""
        d = asdict(self)
        d["features"] = list(self.features)
        if self.parallel_trials == 1:
            del d["parallel_trials"]
        if self.refine:
            del d["refine"]
        return d


def finetune_budget_for(cost: float, rounds: int, finetune_epochs: int,
                        train_epochs: float) -> float:
    """The fine-tune budget that makes ``rounds * finetune_epochs`` budgeted epochs cost
    ``cost`` full trainings of ``train_epochs`` full-data epochs (``epochs * budget`` of a
    budgeted training; capped at 1)."""
    check(cost > 0, "search_cost", f"{cost} must be positive", "> 0")
    return min(1.0, cost * train_epochs / (rounds * finetune_epochs))


class FineTuner:
    """Inner loop: score a sampler by fine-tuning a copy of ``w_share`` (section 3.4).

    Args:
        w_share: the uniformly trained model (left unchanged).
        train_cfg: the settings ``w_share`` was trained with; the fine-tune uses them with
            ``lr * finetune_lr_scale`` and its schedule spanning the fine-tune.
    """

    def __init__(self, w_share: nn.Module, data: DataSplits, train_cfg: TrainConfig,
                 cfg: SearchConfig):
        self.w_share, self.data, self.cfg = w_share, data, cfg
        self.train_cfg = train_cfg.replace(lr=train_cfg.lr * cfg.finetune_lr_scale,
                                           final_lr=train_cfg.final_lr * cfg.finetune_lr_scale)
        self.num_samples = budget_samples(len(data.train), cfg.finetune_budget)

    def __call__(self, probs: Tensor, trial: int) -> float:
        """Validation accuracy (in [0, 1]) after ``E_f`` epochs under ``probs`` ``(N,)``.

        Every trial uses the same seed (common random numbers; ``trial`` is unused): the
        sampler's draws and the training's randomness are then shared, so two samplers'
        scores differ by what the samplers do rather than by their draws. On digits at 40%
        noise this raised the retrained SS test accuracy by ~5 points over a fresh seed per
        trial (benchmarks/results/swift_noise.md); the paper does not specify the seeds.
        """
        del trial
        seed = self.cfg.seed * 10_007
        sampler = WeightedSampler(probs, self.num_samples, seed=seed)
        cfg = self.train_cfg.replace(seed=seed)
        # global draws over the global batch: the same steps under DDP as in one process
        steps = -(-self.num_samples // cfg.batch_size) * self.cfg.finetune_epochs
        trainer = Trainer(copy.deepcopy(self.w_share), self.data, cfg, steps)
        cuda = [trainer.device] if trainer.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):  # the same on any worker (e.g. dropout)
            torch.manual_seed(seed)
            for epoch in range(self.cfg.finetune_epochs):
                trainer.train_epoch(sampler, epoch)
        if not trainer.weights_finite():
            raise InvalidSampler("fine-tuning diverged (non-finite weights)")
        return trainer.evaluate(self.data.val)["acc"]


@dataclass
class SearchResult:
    best: SwiftParams
    best_score: float
    trials: list[dict]  # the records of trials.jsonl, in order
    origin: str = "agent"  # the best trial's: "agent" or a reference sampler's name
    pick: int = -1  # index of the best trial in ``trials``

    @property
    def wall_time(self) -> float:
        """Seconds of the search's wall time (over resumed sessions)."""
        return wall_time(self.trials)

    @property
    def agent_time(self) -> float:
        """Seconds the agent spent proposing and learning (part of :attr:`wall_time`)."""
        return sum(t.get("agent_seconds", 0.0) for t in self.trials)


@dataclass(frozen=True)
class SwiftObjective:
    """A Swift sampler's score, ``score(family.probabilities(params) (N,), trial)``
    (:class:`~sampletune.swift.trials.Objective`; picklable when ``score`` is)."""

    family: SwiftFamily
    score: Callable[[Tensor, int], float]

    def __call__(self, params: SwiftParams, trial: int) -> float:
        return self.score(self.family.probabilities(params), trial)


def run_search(run_dir: str | Path, family: SwiftFamily,
               score: Callable[[Tensor, int], float], cfg: SearchConfig, *,
               initial: Sequence[tuple[str, SwiftParams]] = (),
               context: dict | None = None, progress: bool = True,
               engine: EngineConfig | str = "local",
               score_bounds: tuple[float, float] = (-math.inf, math.inf)) -> SearchResult:
    """Algorithm 1: ``cfg.rounds`` trials of ``cfg.agent``, each scored by
    ``score(probabilities (N,), trial) -> float`` (higher is better), ``cfg.parallel_trials``
    at a time on ``engine`` (:class:`~sampletune.swift.engines.EngineConfig` or its kind:
    "local", "process", "ray"; the trials do not depend on it, and ``score`` must be
    picklable for the last two).

    ``initial`` ``[(name, params)]`` are the first trials (e.g. the reference samplers of
    :mod:`sampletune.swift.reference`): scored and told to the agent like its own proposals,
    so the search starts from what a practitioner would try and refines from there. Their
    records carry ``origin`` = the name; the agent's carry ``origin`` = ``"agent"``.

    ``run_dir/trials.jsonl`` is the trial journal (:class:`~sampletune.swift.trials.Journal`);
    each finished trial's record has ``trial`` (= ``id``), ``state`` "done" or "failed"
    (``status`` "ok" or "failed" for earlier readers), cube point ``x``, ``params``,
    ``score`` or ``None``, ``error``, ``seconds`` (its fine-tune and its share of the agent's
    time), ``agent_seconds`` (that share) and ``elapsed`` (the search's wall time so far).
    A sampler with all-zero probability, or a NaN score, is a failed trial, not an error.
    ``context`` (e.g. the feature file) is stored with the settings; resuming with different
    settings is a :class:`ConfigError`, and so is a journal score outside ``score_bounds``
    (what ``score`` can return: an edited journal).

    In a distributed job every rank calls it with the same arguments (see the module
    docstring); ``score`` is then a collective, e.g. :class:`FineTuner`.
    """
    check(family.names == cfg.features and family.transform == cfg.transform
          and family.grad_feature == cfg.grad_feature, "family",
          "does not match the search's features / transform / grad_feature")
    engine = EngineConfig(engine) if isinstance(engine, str) else engine
    world = current_world()
    check_distributed(engine, cfg.parallel_trials, world.size)
    run_dir = Path(run_dir)
    writes = world.rank == 0
    with contextlib.ExitStack() as held:
        # rank 0 claims the directory; every rank reads the journal before rank 0 adds to it
        world.agree(lambda: held.enter_context(rundir.held(
            run_dir if writes else None, {"search": cfg.to_dict(), "n": family.n,
                                          **(context or {})}, file=SEARCH_FILE)), world.device)
        space = SwiftSpace(cfg.segments, len(cfg.features))
        journal = world.agree(lambda: Journal(run_dir / TRIALS_FILE, space, writes,
                                              score_bounds), world.device)
        agent = make_agent(cfg.agent, cfg.dim, cfg.seed, **cfg.agent_options)
        q = cfg.parallel_trials
        objective = SwiftObjective(family, score)
        name = f"swift search ({cfg.agent}-{cfg.transform}{f', q={q}' if q > 1 else ''})"
        scores = [r["score"] for r in journal.finished if r["score"] is not None]
        best = max(scores, default=None)
        with progress_bar(name, total=cfg.rounds, completed=min(len(journal.finished),
                                                                cfg.rounds),
                          enabled=progress and writes) as bar:
            def told(record: dict) -> None:
                nonlocal best
                if record["score"] is not None:
                    best = record["score"] if best is None else max(best, record["score"])
                bar.advance(f"score {_fmt(record['score'])} best {_fmt(best)}")

            records = run_trials(journal, agent, objective, make_engine(engine, objective, q),
                                 cfg.rounds, q, initial=initial, on_told=told)
        pick, = world.decide(agent.recommend())
        return summarise(records, None if pick is None else int(pick))


def summarise(records: list[dict], pick: int | None = None) -> SearchResult:
    """The sampler of trial ``pick`` (the agent's recommendation), or by default the top
    score (ties: the earliest)."""
    ok = [r for r in records if r["score"] is not None]
    if not ok:
        raise ConfigError("search", f"all {len(records)} trials failed; no sampler found",
                          "different features, transform or more rounds")
    top = records[pick] if pick is not None else max(ok, key=lambda r: (r["score"], -r["trial"]))
    return SearchResult(SwiftParams.from_dict(top["params"]), top["score"], records,
                        top.get("origin", "agent"), records.index(top))


def load_trials(run_dir: str | Path, space: SwiftSpace | None = None) -> list[dict]:
    """The finished trials of a search directory, in order, from its journal (checked: a
    record that is not a trial of this program is a :class:`ConfigError`). ``space``: the
    search's (default: the shape of the journal's first trial)."""
    path = Path(run_dir) / TRIALS_FILE
    return Journal(path, space or _journal_space(path)).finished


def _journal_space(path: Path) -> SwiftSpace:
    """The space of the first trial in ``path`` (that record is checked by the journal)."""
    first = next(iter(io.read_jsonl(path)), {})
    try:
        params = SwiftParams.from_dict(first["params"])
        return SwiftSpace(params.segments, len(params.c))
    except (KeyError, TypeError, ValueError, ConfigError):
        return SwiftSpace(1, 1)


def check_or_write_settings(path: Path, settings: dict, restart: bool = False) -> None:
    """Claim ``path``'s folder for this process until it exits, recording ``settings`` in
    ``path`` or checking them against the ones there (:func:`rundir.claim`). In a
    distributed job rank 0 claims, with the number of processes among the settings (the
    trainings' checkpoints hold every rank's generator), and the others wait for its claim
    (and ``restart``'s wipe): a collective."""
    world = current_world()
    if not world.distributed:
        rundir.claim(path.parent, settings, file=path.name, restart=restart)
        return
    world.agree(lambda: rundir.claim(path.parent, {**settings, "world_size": world.size},
                                     file=path.name, restart=restart)
                if world.rank == 0 else None, world.device)


def check_distributed(engine: EngineConfig, parallel_trials: int, world_size: int) -> None:
    """A search of ``world_size`` processes (torchrun) runs one trial at a time in them: a
    one-line :class:`ConfigError` for another engine or more trials in flight."""
    if world_size == 1:
        return
    check(engine.kind == "local", "engine", f"{engine.kind!r} does not run under torchrun "
          f"({world_size} processes train each trial together)", "local")
    check(parallel_trials == 1, "parallel_trials", f"{parallel_trials} trials in flight do "
          f"not run under torchrun ({world_size} processes train each trial together)", "1")


def _fmt(v: float | None) -> str:
    return "failed" if v is None else f"{v:.4f}"
