"""An ask/tell Swift Sampler search for your own training loop (swift-sampler.txt, Algorithm 1).

The outer loop of ``swift search`` without its inner loop: the study proposes samplers
``tau(x) = H(T(G(x)))`` (eqs. 4-10) with the same agents (:mod:`sampletune.swift.agents`)
and reference samplers (:mod:`sampletune.swift.reference`), and the caller scores each one
however it likes, e.g. by fine-tuning its model for a few epochs with ``trial.sampler`` and
returning the validation accuracy (section 3.4)::

    study = SwiftStudy(features, seed=0)
    for _ in range(20):
        trial = study.ask()
        study.tell(trial, my_score(trial.sampler))
    study.save_best("runs/mine/sampler.json")

A study is a function of its settings and the scores told: the same seed and scores give
the same trials. With ``run_dir`` it is journalled there as ``swift search`` journals its
trials (``trials.jsonl``, each score fsynced when told): a study made again with the same
folder, settings and features (after a crash, or in the next session) replays the scores
told, asks again the trial that was waiting for its score, and goes on to the trials an
uninterrupted study would have asked.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from sampletune import io, rundir
from sampletune.errors import ConfigError, check, check_flag, check_int
from sampletune.features import FeatureKey, save_features
from sampletune.samplers import WeightedSampler
from sampletune.seeding import check_seed, derive_seed
from sampletune.swift.agents import AGENTS, make_agent
from sampletune.swift.family import DEFAULT_FEATURES, GRAD_FEATURE, InvalidSampler, SwiftFamily
from sampletune.swift.params import SwiftParams, SwiftSpace
from sampletune.swift.reference import reference_params
from sampletune.swift.sampler_file import SamplerSpec, inside_folder, save_sampler
from sampletune.swift.trials import Journal, propose

MAX_INVALID = 100  # proposals in a row without a usable sampler before ask() gives up
STUDY_FILE = "study.json"  # a study's run directory: its identity ...
TRIALS_FILE = "trials.jsonl"  # ... and its journal


@dataclass
class Trial:
    """One candidate sampler of a :class:`SwiftStudy`.

    ``sampler`` draws ``num_samples`` indices per epoch by ``probabilities`` (float64
    ``(N,)``, summing to one), with replacement; call ``sampler.set_epoch(e)`` each epoch.
    Every trial's sampler has the same seed (common random numbers, as ``swift search``'s
    fine-tunes), so two trials' scores differ by their samplers, not by their draws.
    """

    number: int
    origin: str  # "agent", or the reference sampler's name ("uniform", "drop-top-0.2", ...)
    params: SwiftParams
    x: Tensor  # float64 (D,): the point of the agent's unit cube
    probabilities: Tensor | None = None  # None when the sampler is unusable (state "failed")
    sampler: WeightedSampler | None = None
    state: str = "pending"  # "pending" (asked, not told), "ok" or "failed"
    score: float | None = None
    error: str | None = None  # why a failed trial failed


class SwiftStudy:
    """Ask/tell search of a Swift sampler over per-example features.

    Args:
        features: ``{name: float64 (N,)}`` tensors or numpy arrays, e.g. from
            :func:`sampletune.features.features_from_loader`; example ``i`` is position ``i``
            of the data the samplers index. Every feature must be real, finite and 1-D,
            all of the same ``N``.
        seed: seeds the agent and the trials' samplers, in ``[0, 2**32)``.
        agent: ``"bo"`` (GP-UCB, section 3.3), ``"random"`` or ``"rl"`` (appendix A.1.2).
        segments: ``S`` of H (eq. 8); ``feature_names`` the features G aggregates (eq. 6);
            ``transform`` T, ``"cgf"`` (eq. 10, weighing by ``grad_feature``) or ``"cdf"``.
        references: ask the reference samplers first (uniform, "drop the top q by loss").
        num_samples: indices each trial's sampler draws per epoch (default ``N``).
        agent_options: keywords of the agent (e.g. ``{"n_init": 5}`` for BO).
        run_dir: a folder to journal the study in and resume it from (see the module
            docstring), locked until :meth:`close` or the process ends. Other settings or
            features than the ones it holds are refused; ``restart=True`` discards them.
    """

    def __init__(self, features: dict[str, Tensor], *, seed: int = 0, agent: str = "bo",
                 segments: int = 4, feature_names: Sequence[str] = DEFAULT_FEATURES,
                 transform: str = "cgf", grad_feature: str = GRAD_FEATURE,
                 references: bool = True, num_samples: int | None = None,
                 agent_options: dict | None = None, run_dir: str | Path | None = None,
                 restart: bool = False):
        check(isinstance(features, dict) and bool(features), "features",
              "must be a non-empty dict of (N,) tensors", "{name: tensor}")
        check_seed(seed)
        check(agent in AGENTS, "agent", f"unknown agent {agent!r}", ", ".join(AGENTS))
        check_int(segments, "segments", 1)
        check_flag(references, "references")
        check(agent_options is None or isinstance(agent_options, Mapping), "agent_options",
              f"is a {type(agent_options).__name__}", "a dict of the agent's keywords")
        check(isinstance(feature_names, Sequence) and not isinstance(feature_names, str),
              "feature_names", f"{feature_names!r} is not a sequence of names",
              "e.g. ['loss', 'renormed_entropy']")
        check(len(set(feature_names)) == len(feature_names), "feature_names",
              f"{list(feature_names)} repeats a name", "distinct feature names")
        self.features = _checked_features(features)
        self.family = SwiftFamily(self.features, feature_names, transform, grad_feature)
        self.seed, self.segments = seed, segments
        self.num_samples = self.family.n if num_samples is None else num_samples
        check_int(self.num_samples, "num_samples", 1)
        self.space = SwiftSpace(segments, len(self.family.names))
        self.agent = make_agent(agent, self.space.dim, seed, **(agent_options or {}))
        self.initial = reference_params(self.family, segments) if references else []
        self.sampler_seed = derive_seed(seed, "swift-study", "sampler")
        self.trials: list[Trial] = []
        self._pending: Trial | None = None
        self._asked_at = 0.0  # perf_counter when the pending trial was asked
        self._closed = False
        self.journal = None
        check_flag(restart, "restart")
        if run_dir is not None:
            identity = {"seed": seed, "agent": agent, "segments": segments,
                        "feature_names": list(self.family.names), "transform": transform,
                        "grad_feature": grad_feature, "references": references,
                        "num_samples": self.num_samples, "agent_options": agent_options or {},
                        "features": _fingerprint(self.features)}
            run_dir = Path(run_dir).absolute()  # where it is now, whatever chdir comes
            # claim() re-enters a folder this process holds: a second study there would
            # write the same journal
            check(not rundir.held_here(run_dir), "run_dir", f"{run_dir} is open in this "
                  "process (another SwiftStudy on it, or a run)", "close() it first")
            try:
                rundir.claim(run_dir, identity, file=STUDY_FILE, restart=restart)
                self.journal = Journal(run_dir / TRIALS_FILE, self.space)
                self._replay()
            except BaseException as err:
                rundir.release(run_dir)  # claimed here (checked above): refused, not held
                if not isinstance(err, ConfigError):
                    raise
                # the run directory's messages speak of the CLI's flags
                raise ConfigError("run_dir", str(err).removeprefix(f"{err.field}: ")
                                  .replace("--restart", "restart=True")
                                  .replace("--out", "run_dir")) from None

    def close(self) -> None:
        """Unlock ``run_dir`` (also on leaving a ``with`` block). The trials, :attr:`best`
        and :meth:`save_best` stay; asking and telling end."""
        if self.journal is not None:
            rundir.release(self.journal.path.parent)
        self._closed = True

    def __enter__(self) -> SwiftStudy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _replay(self) -> None:
        """Tell the agent the journal's finished trials, in order, as they were told."""
        for r in self.journal.finished:
            trial = Trial(r["trial"], r.get("origin", "agent"), self.space.from_dict(r["params"]),
                          torch.tensor(r["x"], dtype=torch.float64), error=r.get("error"))
            if r["score"] is not None:
                try:
                    trial.probabilities = self.family.probabilities(trial.params)
                except InvalidSampler as err:
                    raise ConfigError("out", f"{self.journal.path} scores trial {trial.number}"
                                      f", whose sampler is unusable ({err})",
                                      "a journal this study wrote") from None
                trial.sampler = self._sampler(trial.probabilities)
            self._finish(trial, r["score"])

    # ---- ask / tell ----------------------------------------------------------------------
    def ask(self) -> Trial:
        """The next trial, with a ready ``sampler``. A proposal whose sampler is unusable (all
        probabilities zero) is recorded as a failed trial and the next one is asked. A
        resumed study first asks again the trial its journal left waiting for a score."""
        check(not self._closed, "study", "is closed", "a new SwiftStudy on its run_dir")
        check(self._pending is None, "trial", f"trial {getattr(self._pending, 'number', '')} "
              "is still waiting for its score", "tell(trial, score) before the next ask()")
        for _ in range(MAX_INVALID):
            waiting = self.journal.unfinished.get(len(self.trials)) if self.journal else None
            if waiting is not None:
                origin, x = waiting["origin"], torch.tensor(waiting["x"], dtype=torch.float64)
                params = self.space.from_dict(waiting["params"])
            else:
                [(origin, x, params)] = propose(self.agent, self.space, self.initial,
                                                len(self.trials), 1, torch.empty(0))
            trial = Trial(len(self.trials), origin, params, x)
            if self.journal is not None and waiting is None:
                self.journal.propose({"trial": trial.number, "origin": origin,
                                      "x": x.tolist(), "params": self.space.to_dict(params)})
            try:
                trial.probabilities = self.family.probabilities(params)
            except InvalidSampler as err:
                trial.error = str(err)
                self._finish(trial, None)
                continue
            trial.sampler = self._sampler(trial.probabilities)
            self._pending, self._asked_at = trial, time.perf_counter()
            return trial
        raise ConfigError("features", f"{MAX_INVALID} proposals in a row gave no usable "
                          "sampler", "other features, transform or segments")

    def _sampler(self, probabilities: Tensor) -> WeightedSampler:
        return WeightedSampler(probabilities, self.num_samples, seed=self.sampler_seed)

    def tell(self, trial: Trial, score: float | None) -> None:
        """Record ``trial``'s score (higher is better). ``None``, NaN or an infinite score
        marks the trial failed: the agent learns it as the worst score seen."""
        check(not self._closed, "study", "is closed", "a new SwiftStudy on its run_dir")
        check(trial is self._pending, "trial", f"trial {getattr(trial, 'number', trial)!r} is "
              "not the one waiting for a score", "the trial the last ask() returned")
        if score is not None:
            real = isinstance(score, numbers.Real) and not isinstance(score, bool) or (
                isinstance(score, Tensor) and score.numel() == 1 and not score.is_complex()
                and score.dtype != torch.bool)
            check(real, "score", f"{score!r} is not a number",
                  "a float, or None for a failed trial")
            score = float(score)
            if not math.isfinite(score):
                trial.error = f"score is {score}"
                score = None
        elif trial.error is None:
            trial.error = "no score"
        self._pending = None
        self._finish(trial, score, time.perf_counter() - self._asked_at)

    def _finish(self, trial: Trial, score: float | None, seconds: float = 0.0) -> None:
        """Tell the agent, and journal the trial unless it is replayed from the journal."""
        self.agent.tell(trial.x, score)
        trial.score = score
        trial.state = "failed" if score is None else "ok"
        self.trials.append(trial)
        if self.journal is not None and len(self.journal.finished) < len(self.trials):
            self.journal.finish({"trial": trial.number, "origin": trial.origin,
                                 "x": trial.x.tolist(),
                                 "params": self.space.to_dict(trial.params), "score": score,
                                 "error": trial.error, "seconds": seconds})

    def optimize(self, score: Callable[[WeightedSampler], float | None], n_trials: int, *,
                 catch: tuple[type[Exception], ...] = ()) -> Trial | None:
        """Ask, score with ``score(sampler)`` and tell ``n_trials`` times; an exception of a
        type in ``catch`` fails the trial instead of stopping. Returns :attr:`best`."""
        check(isinstance(n_trials, int) and n_trials >= 1, "n_trials",
              f"{n_trials!r} must be a positive integer", ">= 1")
        for _ in range(n_trials):
            trial = self.ask()
            try:
                value = score(trial.sampler)
            except catch as err:
                trial.error = f"{type(err).__name__}: {err}"
                value = None
            self.tell(trial, value)
        return self.best

    # ---- results -------------------------------------------------------------------------
    @property
    def best(self) -> Trial | None:
        """The trial to keep: the agent's recommendation (BO: the highest GP posterior mean,
        the others: the top score), or ``None`` while no trial has succeeded."""
        pick = self.agent.recommend()
        return None if pick is None else self.trials[pick]

    def save_best(self, path: str | Path, *, feature_file: str | Path | None = None,
                  key: FeatureKey | None = None, split: str = "") -> Path:
        """Write the best trial as a sampler file ``path`` (``sampler.json``), with the
        features beside it in ``feature_file`` (default ``<stem>-features.npz`` in the
        same folder; it must be in that folder or below). ``split``: the fingerprint of the
        training split the features index (``data.train.fingerprint()``), so that
        ``train --sampler swift`` refuses the file on another split of the same size. Read
        it back with :func:`sampletune.swift.sampler_from_file`. Returns ``path``."""
        best = self.best
        check(best is not None, "study", f"no successful trial among {len(self.trials)}",
              "tell() a finite score first")
        path = Path(path)
        feature_file = Path(feature_file) if feature_file is not None else (
            path.parent / f"{path.stem}-features.npz")
        key = key or FeatureKey("user", "train", self.seed, "user")
        inside_folder(path, str(feature_file), "feature_file")  # before writing anything
        save_features(feature_file, self.features, key)
        return save_sampler(path, SamplerSpec(best.params, self.family.names,
                                              self.family.transform, str(feature_file),
                                              self.family.n, best.score,
                                              self.family.grad_feature, split))


def _fingerprint(features: dict[str, Tensor]) -> str:
    """A short hash of the features' names and float64 values, in order."""
    return io.digest(*(part for name in sorted(features) for part in (
        name.encode() + b"\0",
        features[name].detach().to("cpu", torch.float64).contiguous().numpy().tobytes())))


def _checked_features(features: dict) -> dict[str, Tensor]:
    """``features`` as tensors (numpy arrays converted without a copy), each checked to be
    real, finite and 1-D, all of one length: a one-line :class:`ConfigError` otherwise."""
    bad_keys = [k for k in features if not isinstance(k, str)]
    check(not bad_keys, "features", f"names {bad_keys} are not strings", "{name: tensor}")
    out = {k: torch.as_tensor(v) if isinstance(v, Tensor | np.ndarray) else None
           for k, v in features.items()}
    shapes = {k: type(features[k]).__name__ if v is None else tuple(v.shape)
              for k, v in out.items()}
    lengths = {s[0] if isinstance(s, tuple) and len(s) == 1 else None for s in shapes.values()}
    check(len(lengths) == 1 and None not in lengths and 0 not in lengths, "features",
          f"shapes {shapes}", "one 1-D tensor or numpy array (n,), n >= 1, per feature, all "
          "of the same n")
    for k, v in out.items():
        check(not (v.is_complex() or v.dtype == torch.bool), "features",
              f"{k} has dtype {v.dtype}", "real numbers")
        bad = int((~torch.isfinite(v)).sum())
        check(bad == 0, "features", f"{k} has {bad} NaN or infinite value(s)", "finite")
    return out
