"""Appendix A.1.1: how well the inner loop's approximated scores rank samplers.

The last ``k`` successful samplers of a search are retrained from scratch; **SR** is the
Spearman rank correlation between their approximated scores (fine-tuned from ``w_share``)
and their from-scratch scores, **TR** the from-scratch rank (1 = best) of the approximated
top-1. Both scores are validation accuracy. Each retraining is appended to
``verify.jsonl`` as it finishes, so an interrupted verification resumes; the directory is
locked meanwhile, so a search or another verification cannot write there at the same time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from sampletune import io, rundir
from sampletune.errors import check
from sampletune.swift.params import SwiftParams
from sampletune.swift.search import load_trials
from sampletune.train import progress_bar

VERIFY_FILE = "verify.jsonl"


def rank_metrics(approx: Sequence[float], truth: Sequence[float]) -> dict:
    """``{"SR": Spearman rho in [-1, 1], "TR": from-scratch rank of the approximated top-1}``.

    TR ranks by descending score, ties sharing the best rank; the approximated top-1 is the
    earliest of tied approximated maxima. SR is ``None`` (JSON null: undefined) when either
    list is constant.
    """
    from scipy.stats import rankdata, spearmanr  # 0.5 s of import: only when verifying

    a, t = np.asarray(approx, dtype=float), np.asarray(truth, dtype=float)
    check(len(a) == len(t) and len(a) >= 2, "verify", f"needs two equal-length score lists "
          f"of at least 2, got {len(a)} and {len(t)}")
    constant = np.all(a == a[0]) or np.all(t == t[0])
    sr = None if constant else float(spearmanr(a, t).statistic)
    tr = int(rankdata(-t, method="min")[int(np.argmax(a))])
    return {"SR": sr, "TR": tr}


SELECTIONS = ("last", "spread")


def select_trials(ok: list[dict], k: int, how: str = "last") -> list[dict]:
    """``k`` of the successful trials ``ok``: the ``last`` ones (appendix A.1.1), or a
    ``spread``: evenly spaced over the fine-tune score ranking, the top one included (a
    ranking among near-equal last trials says little; one over the whole range says how
    far the inner loop can be trusted)."""
    check(how in SELECTIONS, "select", f"unknown selection {how!r}", ", ".join(SELECTIONS))
    if how == "last" or k >= len(ok):
        return ok[-k:]
    ranked = sorted(ok, key=lambda r: (-r["score"], r["trial"]))
    picks = sorted({round(i * (len(ranked) - 1) / (k - 1)) for i in range(k)})
    return sorted((ranked[i] for i in picks), key=lambda r: r["trial"])


def verify_search(search_dir: str | Path, scratch_score: Callable[[SwiftParams, int], dict],
                  k: int = 10, *, select: str = "last", out_dir: str | Path | None = None,
                  progress: bool = True) -> dict:
    """Retrain ``k`` successful samplers of ``search_dir`` (:func:`select_trials`) from
    scratch and rank.

    ``scratch_score(params, trial)`` trains from scratch and returns at least ``{"val_acc"}``
    (other metrics are kept in the records). Returns ``{"SR", "TR", "k", "records"}``.
    """
    check(k >= 2, "k", f"{k} samplers cannot be ranked", ">= 2")
    ok = [r for r in load_trials(search_dir) if r["score"] is not None]
    check(len(ok) >= 2, "run", f"{search_dir} has {len(ok)} successful trials; need >= 2")
    chosen = select_trials(ok, k, select)
    path = Path(out_dir or search_dir) / VERIFY_FILE
    with rundir.locked(path.parent):
        records = io.read_jsonl(path, "trial", field="run")
        io.check_records(path, records, {"approx": (float, int), "val_acc": (float, int)}, "run",
                         {"approx": (0.0, 1.0), "val_acc": (0.0, 1.0)})
        done = {r["trial"]: r for r in records}
        with progress_bar("swift verify", total=len(chosen), enabled=progress) as bar:
            for r in chosen:
                if r["trial"] not in done:
                    metrics = scratch_score(SwiftParams.from_dict(r["params"]), r["trial"])
                    rec = {"trial": r["trial"], "approx": r["score"], **metrics}
                    io.append_jsonl(path, rec)
                    done[r["trial"]] = rec
                bar.advance()
    records = [done[r["trial"]] for r in chosen]
    metrics = rank_metrics([r["approx"] for r in records], [r["val_acc"] for r in records])
    return {**metrics, "k": len(records), "records": records}
