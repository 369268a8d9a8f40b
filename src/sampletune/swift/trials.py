"""The search core: an agent searches any parametric family through a search space and an
objective, with several trials in flight, journalled so that a killed search resumes.

- :class:`SearchSpace`: ``dim`` coordinates of the unit cube, a cube point -> a candidate
  (e.g. a sampler's parameters) and back, and the candidate's JSON form for the journal.
- :class:`Objective`: ``objective(candidate, trial) -> score`` (higher is better); raising
  :class:`InvalidCandidate` (or returning a non-finite score) fails the trial, anything else
  stops the search.
- :class:`Journal`: ``trials.jsonl``, one JSON record per state change of a trial: its id
  and ``state`` ``pending`` (proposed: origin, cube point ``x``, candidate ``params``),
  ``running`` (handed to an engine) and ``done`` / ``failed`` (the full record: score,
  error, timings). Journals written before there were states (one record per finished
  trial, ``status`` "ok" / "failed") read as done / failed.
- :func:`run_trials`: the outer loop over an engine (:mod:`sampletune.swift.engines`).

Determinism with ``q`` trials in flight: trial ``t + q`` is proposed right after trial ``t``
is told, with trials ``t + 1 .. t + q - 1`` pending (the first ``q`` at once, as a batch).
Scores are told in trial order whatever order the engine finishes them in, so the trials
depend on the seed and ``q`` only, never on the engine or the timing; ``q = 1`` is the
sequential search. A trial's final record is appended when it is told, so the finished
records are in trial order as before; one that finished early waits in memory (at most
``q - 1`` of them). On resume the finished records are told again, and trials left pending
or running are run again from their journalled point: the search reaches the result of an
uninterrupted one.

In a distributed job (:mod:`sampletune.train.distributed`; the objective trains
data-parallel) every rank runs the same search in step: each rank's agent asks, and every
rank takes rank 0's proposals and rank 0's scores, so no rank branches on a difference of
rounding; only rank 0 writes the journal (:class:`Journal` with ``writes=False`` elsewhere),
which every rank reads on resuming.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from sampletune import io
from sampletune.errors import ConfigError, check
from sampletune.train.distributed import current_world

STATES = ("pending", "running", "done", "failed")
_REPAIR = "a journal this program wrote; --restart discards the run"


class InvalidCandidate(ConfigError):
    """A candidate that cannot be scored (the trial fails; the search goes on)."""

    def __init__(self, problem: str, field: str = "candidate", allowed: str | None = None):
        super().__init__(field, problem, allowed)


class SearchSpace(Protocol):
    """A parametric family seen through the unit cube ``[0, 1]^dim``."""

    dim: int

    def candidate(self, x: Tensor) -> Any:
        """The candidate at cube point ``x`` float64 ``(dim,)``."""
        ...

    def point(self, candidate: Any) -> Tensor:
        """The cube point float64 ``(dim,)`` of ``candidate`` (inverse of :meth:`candidate`)."""
        ...

    def to_dict(self, candidate: Any) -> dict:
        """``candidate`` as JSON (the journal's ``params``)."""
        ...

    def from_dict(self, d: dict) -> Any:
        """Inverse of :meth:`to_dict`; bad input raises ``KeyError``, ``TypeError``,
        ``ValueError`` or :class:`ConfigError`."""
        ...


class Objective(Protocol):
    """Scores a candidate: ``objective(candidate, trial) -> float``, higher is better. To run
    in worker processes or Ray it must be picklable."""

    def __call__(self, candidate: Any, trial: int) -> float:
        ...


@dataclass(frozen=True)
class TrialTask:
    """What an engine runs: trial ``trial``'s ``candidate`` (picklable)."""

    trial: int
    candidate: Any


def evaluate(objective: Objective, task: TrialTask) -> dict:
    """Run one trial: ``{"trial", "score" (None if it failed), "error", "seconds"}``. Every
    engine runs exactly this, so they agree."""
    start = time.perf_counter()
    try:
        value = float(objective(task.candidate, task.trial))
        if not math.isfinite(value):
            raise InvalidCandidate(f"score is {value}")
        score, error = value, None
    except InvalidCandidate as err:
        score, error = None, str(err)
    return {"trial": task.trial, "score": score, "error": error,
            "seconds": time.perf_counter() - start}


def propose(agent, space: SearchSpace, initial: Sequence[tuple[str, Any]], first: int,
            count: int, pending: Tensor) -> list[tuple[str, Tensor, Any]]:
    """Trials ``first .. first + count - 1`` as ``(origin, cube point x (dim,), candidate)``:
    ``initial[t]`` ``(name, candidate)`` while ``t < len(initial)`` (origin: its name), then
    the agent's ``ask_batch`` (origin ``"agent"``) given the points ``pending`` ``(p, dim)``
    of the trials asked and not told before ``first``.

    ``x`` goes through a list of floats so a live search tells the agent the floats that a
    resumed one reads back from JSON. In a distributed job the agent's points are rank 0's.
    """
    out = []
    for t in range(first, min(first + count, len(initial))):
        name, candidate = initial[t]
        out.append((name, torch.tensor(space.point(candidate).tolist(), dtype=torch.float64),
                    candidate))
    asked = first + count - max(first, len(initial))
    if asked > 0:
        known = torch.cat([pending.to(torch.float64).reshape(-1, space.dim),
                           *(x.unsqueeze(0) for _, x, _ in out)])
        for x in current_world().broadcast(agent.ask_batch(asked, known)):
            x = torch.tensor(x.tolist(), dtype=torch.float64)
            out.append(("agent", x, space.candidate(x)))
    return out


class Journal:
    """``trials.jsonl`` of a search (see the module docstring), read and checked on opening.

    ``writes=False`` keeps the records in memory only (the ranks of a distributed job
    other than rank 0). ``score_bounds``: what a score can be (validation accuracies: 0 to
    1); a record outside them was edited and is refused.

    Attributes:
        finished: the final records (state ``done`` or ``failed``), trial ``0, 1, ...``.
        unfinished: ``{trial: pending record}`` of the trials proposed and not finished.
    """

    def __init__(self, path: str | Path, space: SearchSpace, writes: bool = True,
                 score_bounds: tuple[float, float] = (-math.inf, math.inf)):
        self.path, self.space, self.writes = Path(path), space, writes
        self.score_bounds = score_bounds
        self.finished: list[dict] = []
        self.unfinished: dict[int, dict] = {}
        for number, r in enumerate(io.read_jsonl(self.path)):
            self._read(number + 1, r)

    def _read(self, line: int, r: dict) -> None:
        t = r.get("trial")
        # a journal of earlier versions: final records only, done when they have a score
        state = r.get("state", "failed" if r.get("score") is None else "done")
        check(isinstance(t, int) and not isinstance(t, bool) and t >= 0
              and r.get("id", t) == t and state in STATES, "out",
              f"{self.path} line {line} has a bad 'trial', 'id' or 'state'", _REPAIR)
        where = f"(line {line})"
        if state == "running":
            check(t in self.unfinished, "out", f"{self.path} trial {t} runs without being "
                  f"pending {where}", _REPAIR)
            return
        self._check_candidate(r, state, where)
        if state == "pending":
            check(t == self.proposed, "out", f"{self.path} proposes trial {t} where "
                  f"{self.proposed} belongs {where}", _REPAIR)
            self.unfinished[t] = r
            return
        check(t == len(self.finished), "out", f"{self.path} finishes trial {t} where "
              f"{len(self.finished)} belongs {where}", _REPAIR)
        self.unfinished.pop(t, None)
        self.finished.append({**r, "id": t, "state": state})

    def _check_candidate(self, r: dict, state: str, where: str) -> None:
        number = (float, int)
        final = state in ("done", "failed")
        kinds = {"x": (list,), "params": (dict,)}
        if final:
            kinds.update(score=(*number, type(None)), seconds=number)
        ok = all(isinstance(r.get(k), v) and not isinstance(r.get(k), bool)
                 and not (isinstance(r.get(k), float) and not math.isfinite(r[k]))
                 for k, v in kinds.items())
        ok = ok and len(r["x"]) == self.space.dim and all(  # a point of the unit cube
            isinstance(v, number) and not isinstance(v, bool) and 0 <= v <= 1 for v in r["x"])
        # origin: a name, required since pending records exist (final records of earlier
        # journals may lack it: the agent's); error: a message or null
        ok = ok and isinstance(r.get("origin"), str) if state == "pending" else \
            ok and isinstance(r.get("origin", ""), str)
        ok = ok and (not final or isinstance(r.get("error"), str | None))
        if ok:
            try:
                self.space.from_dict(r["params"])
            except (KeyError, TypeError, ValueError, ConfigError):
                ok = False
        if final and ok:  # failed <=> no score (null, never missing)
            ok = "score" in r and (r["score"] is None) == (state == "failed")
            lo, hi = self.score_bounds
            ok = ok and (r["score"] is None or lo <= r["score"] <= hi)
        check(ok, "out", f"{self.path} trial {r['trial']} has a bad or missing 'x', 'params', "
              f"'origin', 'score', 'error' or 'seconds' {where}", _REPAIR)

    @property
    def proposed(self) -> int:
        """Trials proposed so far (they are proposed in order: 0, 1, ...)."""
        return max(len(self.finished), max(self.unfinished, default=-1) + 1)

    def propose(self, record: dict) -> None:
        """Append ``record`` (``trial``, ``origin``, ``x``, ``params``) as pending."""
        record = {**record, "id": record["trial"], "state": "pending"}
        self._append(record, durable=False)
        self.unfinished[record["trial"]] = record

    def running(self, trial: int) -> None:
        """Append that ``trial`` went to an engine."""
        self._append({"id": trial, "trial": trial, "state": "running"}, durable=False)

    def finish(self, record: dict) -> dict:
        """Append trial ``record["trial"]``'s final record (state from its score)."""
        state = "failed" if record["score"] is None else "done"
        record = {**record, "id": record["trial"], "state": state,
                  "status": "ok" if state == "done" else "failed"}  # readers of old journals
        self._append(record)
        self.unfinished.pop(record["trial"], None)
        self.finished.append(record)
        return record

    def _append(self, record: dict, durable: bool = True) -> None:
        """Journal ``record``; only final records are fsynced (a lost pending or running
        record resumes as if the search had stopped before it, and is proposed again)."""
        if self.writes:
            io.append_jsonl(self.path, record, durable=durable)


def wall_time(records: Sequence[dict]) -> float:
    """The search's wall time in seconds over resumed sessions: the last final record's
    ``elapsed``, or for a journal written before it was recorded the trials' ``seconds``
    summed."""
    if records and "elapsed" in records[-1]:
        return float(records[-1]["elapsed"])
    return float(sum(r["seconds"] for r in records))


def run_trials(journal: Journal, agent, objective: Objective, engine, rounds: int, q: int, *,
               initial: Sequence[tuple[str, Any]] = (),
               on_told: Callable[[dict], None] | None = None) -> list[dict]:
    """Run trials until ``rounds`` are finished, ``q`` in flight on ``engine``; returns the
    final records in trial order (each told to ``agent``, and passed to ``on_told``).

    ``agent`` asks and tells cube points (:mod:`sampletune.swift.agents`); ``engine`` has
    ``submit(TrialTask)``, ``wait() -> evaluate()'s dict`` (any finished trial) and
    ``close()`` (called here). Final records: ``trial``, ``id``, ``state``, ``origin``,
    ``x``, ``params``, ``score``, ``error``, ``seconds`` (the trial's own time and its share
    of the agent's), ``agent_seconds`` (that share: proposing and learning) and ``elapsed``
    (the search's wall time when it was told, over resumed sessions).
    """
    space, world = journal.space, current_world()
    records = journal.finished[:rounds]
    start = time.perf_counter() - wall_time(records)
    points = {t: torch.tensor(r["x"], dtype=torch.float64)
              for t, r in [*enumerate(records), *journal.unfinished.items()]}
    proposal_seconds: dict[int, float] = {}
    results: dict[int, dict] = {}

    def submit(t: int) -> None:
        engine.submit(TrialTask(t, space.from_dict(journal.unfinished[t]["params"])))
        journal.running(t)

    def fill(told: int) -> None:
        """Propose (and submit) the trials up to ``told + q`` that the journal lacks."""
        first = max(told, journal.proposed)
        count = min(told + q, rounds) - first
        if count <= 0:
            return
        began = time.perf_counter()
        pending = torch.stack([points[t] for t in range(told, first)]) if first > told \
            else torch.empty(0, space.dim, dtype=torch.float64)
        batch = propose(agent, space, initial, first, count, pending)
        share = (time.perf_counter() - began) / count
        for t, (origin, x, candidate) in enumerate(batch, first):
            points[t], proposal_seconds[t] = x, share
            journal.propose({"trial": t, "origin": origin, "x": x.tolist(),
                             "params": space.to_dict(candidate)})
            submit(t)

    try:
        check(q >= 1, "parallel_trials", f"{q} must be positive", ">= 1")
        for t in sorted(journal.unfinished):
            if t < rounds:
                submit(t)
        for t in range(rounds):
            fill(t)
            if t < len(records):
                agent.tell(points[t], records[t]["score"])
                continue
            while t not in results:
                outcome = engine.wait()
                results[outcome["trial"]] = outcome
            outcome = results.pop(t)
            score, = world.decide(outcome["score"])  # rank 0's in a distributed job
            told = time.perf_counter()
            # In memory only until the record below: a crash before it runs trial t again.
            agent.tell(points[t], score)
            agent_seconds = proposal_seconds.get(t, 0.0) + time.perf_counter() - told
            pending = journal.unfinished[t]
            record = journal.finish({
                "trial": t, "origin": pending["origin"], "x": pending["x"],
                "params": pending["params"], "score": score,
                "error": outcome["error"], "seconds": outcome["seconds"] + agent_seconds,
                "agent_seconds": agent_seconds, "elapsed": time.perf_counter() - start})
            records.append(record)
            if on_told is not None:
                on_told(record)
    finally:
        engine.close()
    return records
