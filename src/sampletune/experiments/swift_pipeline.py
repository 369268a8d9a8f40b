"""Swift Sampler end to end, in one resumable run directory.

1. Train from scratch with uniform sampling (a shuffled pass per epoch), keeping the
   best-validation epoch (early stopping). That epoch's model is ``w_share`` (section
   3.4): the features come from it (section 3.2), and it is the uniform model the guard
   compares with. A model trained to the end of its schedule has memorised noisy labels,
   and its losses no longer tell them apart (AUROC 0.99 at the best-validation epoch vs
   0.72-0.94 at the end on noisy digits); the early-stopped model has not. The fine-tunes
   start from the last epoch instead: from there a sampler that keeps noisy labels out
   visibly helps, while from the early-stopped model one that barely moves it scores as
   well.
2. Features of the training set (``features/``), from ``w_share`` in eval mode; ``w_share``'s
   weights are saved beside them (``features/*.model.pt``) for crop-level sampling.
3. The search (``search/trials.jsonl``): the reference samplers (uniform, "drop the top q
   by loss", :mod:`sampletune.swift.reference`) are its first trials, then the agent's; the
   top sampler is saved as ``sampler.json``.
4. Retrain from scratch with the top sampler: same config, seed and budget as step 1 —
   unless its fine-tune score does not clearly beat the uniform reference's. Then the
   sampler is uniform, and where a two-component mixture on the loss feature says a share
   ``q`` of the labels is noisy, "drop the top q" is retrained instead
   (:func:`~sampletune.swift.reference.estimated_cut`): the fine-tunes, which start from a
   trained model, do not see the gain of a static cut on data whose noise the network does
   not memorise (``benchmarks/results/swift_noise.md``, round 4).
5. The guards (:mod:`sampletune.swift.guard`): each training's model is its last epoch's
   unless the early-stopped one clearly beats it on validation; the model kept is the
   Swift model unless validation prefers the uniform one (paired comparisons; the
   estimated cut, which the search did not back, must clearly beat it; never test), so the
   pipeline is not worse than the cheap baselines it trained.
6. The refinement (``search.refine``), when a Swift model was trained and the mixture on
   w_share's loss leaves at least ``MIN_AMBIGUOUS`` of the examples undecided (w_share's
   losses separate the noise poorly): the features again, from the Swift model's
   best-validation epoch (``features/refined/``), which trained on cleaner labels than
   w_share; "drop the top q" at the estimated noisy share ``q`` on its losses
   (:func:`~sampletune.swift.reference.rescored_cut`) is retrained from scratch
   (``refined/``). Against a kept Swift model it is kept unless a paired comparison on
   validation prefers that one; against a kept uniform model, only if it clearly beats
   it. The sampler
   file then names the re-scored features and the Swift model's weights. On noisy MNIST-1D
   (loss AUROC 0.95) it gains 3.7 points (``benchmarks/results/refined_cut.md``).
7. ``report.json`` / ``report.md`` (test accuracy of each, the whole pipeline's cost and
   the search's, diagnostics) and Figs. 1, 2b, 3.

Rerunning the same call resumes every step where it stopped.

Under ``torchrun`` every rank runs the pipeline: the trainings are data-parallel, the
decisions rank 0's, and rank 0 alone writes the run directory
(:mod:`sampletune.train.distributed`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from sampletune import io
from sampletune.errors import ConfigError, check
from sampletune.experiments.config import RunConfig
from sampletune.experiments.setup import load_data, new_model
from sampletune.features import (
    FeatureKey,
    TrainLossTracker,
    cached_features,
    compute_features,
    load_features,
    train_loss_features,
)
from sampletune.samplers import ShuffleSampler, WeightedSampler
from sampletune.samplers.base import epoch_draws
from sampletune.swift import plots
from sampletune.swift.diagnostics import feature_auroc, reference_spread, sampler_diagnostics
from sampletune.swift.engines import EngineConfig
from sampletune.swift.family import SwiftFamily
from sampletune.swift.guard import (
    EARLY_STOP_Z,
    clearly_better,
    paired_comparison,
    simplest_clear_winner,
)
from sampletune.swift.params import SwiftParams
from sampletune.swift.reference import (
    MIN_AMBIGUOUS,
    estimated_cut,
    loss_feature,
    loss_mixture,
    reference_params,
    rescored_cut,
)
from sampletune.swift.sampler_file import SamplerSpec, load_sampler, save_sampler
from sampletune.swift.search import (
    FineTuner,
    SearchConfig,
    check_or_write_settings,
    finetune_budget_for,
    run_search,
)
from sampletune.swift.verify import verify_search
from sampletune.train import TrainResult, train
from sampletune.train.distributed import current_world

SETTINGS_FILE = "swift.json"
ESTIMATED_CUT = "estimated-cut"  # the origin of the estimated cut when it is kept
# Fine-tune epochs of the whole search, in full trainings; with the agent's and the
# evaluations' time the search's wall time stays under 3 trainings on CPU.
DEFAULT_SEARCH_COST = 2.0


def feature_key(run: RunConfig) -> FeatureKey:
    """The key of ``run``'s training-set features (the data set name carries the noise and
    the split settings, since they change the training set and its labels)."""
    data = (f"{run.dataset}-{run.noise_type}{run.noise}-val{run.val_fraction}"
            f"{'noisy' if run.val_noise else ''}-sub{run.train_subset}")
    return FeatureKey(data, "train", run.seed, run.model)


def search_identity(run: RunConfig, data, out: Path, restart: bool = False) -> dict:
    """The run's settings that decide a search's results, as ``swift.json`` records them:
    :func:`~sampletune.experiments.run.config_identity` (with ``data_dir``, which
    :func:`verify_run` loads the data from) and the training split's fingerprint under
    ``data``, so that other data at the same path is refused. A directory written before the
    fingerprint was recorded (its ``run`` has no ``data``) resumes without it."""
    from sampletune.experiments.run import config_identity

    identity = config_identity(run)
    recorded = io.read_json(out / SETTINGS_FILE, "out") \
        if not restart and (out / SETTINGS_FILE).exists() else None
    recorded_run = recorded.get("run") if isinstance(recorded, dict) else None
    if isinstance(recorded_run, dict) and "data" not in recorded_run:
        return identity
    return {**identity, "data": data.train.fingerprint()}


def run_swift(run: RunConfig, search: SearchConfig, *,
              search_cost: float | None = DEFAULT_SEARCH_COST, progress: bool = True,
              restart: bool = False, engine: EngineConfig | str = "local") -> dict:
    """The whole method on ``run``'s data and model, in ``run.out``. Returns the report.

    Args:
        search: search settings; its ``seed`` is replaced by ``run.seed``.
        search_cost: the fine-tune budget is set so that the search's fine-tune epochs add
            up to this many full trainings (:func:`finetune_budget_for`); ``None`` keeps
            ``search.finetune_budget`` (1: the paper's full fine-tune epochs).
        engine: where the search's ``search.parallel_trials`` trials in flight run
            (:class:`~sampletune.swift.engines.EngineConfig`; the trials do not depend on it).
    """
    check(run.out is not None, "out", "swift search needs a run directory", "--out DIR")
    out = Path(run.out)
    if search_cost is not None:
        search = dataclasses.replace(search, finetune_budget=finetune_budget_for(
            search_cost, search.rounds, search.finetune_epochs, run.epochs * run.budget))
    search = dataclasses.replace(search, seed=run.seed)
    data = load_data(run)
    check_or_write_settings(out / SETTINGS_FILE, {"run": search_identity(run, data, out, restart),
                                                  "search": search.to_dict()}, restart)
    tcfg = run.train_config()
    n = len(data.train)
    noisy = data.train.noisy.cpu() if bool(data.train.noisy.any()) else None

    tracker = TrainLossTracker(n, run.epochs)
    draws = epoch_draws(n, run.budget, run.batch_size)  # as `train --sampler` draws
    uniform = train(new_model(run, data), data, ShuffleSampler(n, budget=draws / n,
                                                              seed=run.seed), tcfg,
                    observers=[tracker], run_dir=out / "uniform", progress=progress,
                    description="uniform (w_share)")
    w_share = uniform.best_model()
    start = time.perf_counter()
    feats, feat_path = cached_features(
        out / "features", feature_key(run), w_share, data.train.x, data.train.y,
        extra=train_loss_features(tracker.mean(), data.train.y, run.seed), device=tcfg.device,
        full_grad=search.grad_feature == "grad_norm_full", progress=progress)
    feature_seconds = time.perf_counter() - start
    w_share_path = feat_path.with_suffix(".model.pt")  # what crop-level sampling scores with
    writes = current_world().rank == 0  # distributed, rank 0 alone writes
    if writes:
        io.save_torch(w_share_path, w_share.state_dict())

    family = SwiftFamily(feats, search.features, search.transform, search.grad_feature)
    refs = reference_params(family, search.segments) if search.references else []
    result = run_search(out / "search", family, FineTuner(uniform.model, data, tcfg, search),
                        search, initial=refs, context={"feature_file": feat_path.name},
                        progress=progress, engine=engine, score_bounds=(0.0, 1.0))
    reference = next((r["score"] for r in result.trials if r.get("origin") == "uniform"), None)
    pick = simplest_clear_winner(result.trials, result.trials[result.pick], len(data.val))
    best, origin, score = SwiftParams.from_dict(pick["params"]), pick.get("origin", "agent"), \
        pick["score"]

    # Each training's model: the last epoch, unless early stopping clearly beats it.
    kept_model, uniform_kind, stop = _end_model(uniform, data.val, tcfg.device, w_share)
    guard = {"wins": 0, "losses": 0, "keep": False}
    swift, swift_kind, swift_stop = uniform, uniform_kind, stop
    estimate = {"share": None, "tried": False}
    mixture = None  # the two-component mixture on w_share's loss, fitted once when needed
    if origin == "uniform" and search.references:
        # The fine-tunes saw no sampler beat uniform. Where the losses say a share of the
        # labels is noisy, retrain the cut at that share from scratch instead (it costs the
        # training the search's pick would have), kept only if it clearly beats uniform.
        mixture = loss_mixture(family, run.seed)
        share, cut = estimated_cut(family, search.segments, run.seed, mixture)
        estimate = {"share": share, "tried": cut is not None}
        if cut is not None:
            swift = _retrain(run, data, tcfg, family.probabilities(cut), out, progress)
            swift_model, swift_kind, swift_stop = _end_model(swift, data.val, tcfg.device)
            guard = clearly_better(swift_model, kept_model, data.val, tcfg.device)
            if guard["keep"]:
                best, origin, score = cut, ESTIMATED_CUT, None
    elif origin != "uniform":
        swift = _retrain(run, data, tcfg, family.probabilities(best), out, progress)
        swift_model, swift_kind, swift_stop = _end_model(swift, data.val, tcfg.device)
        guard = paired_comparison(swift_model, kept_model, data.val, tcfg.device)
    if guard["keep"]:
        kept_model = swift_model
    chosen = "swift" if guard["keep"] else "uniform"
    kept_metrics = (_metrics(swift)[swift_kind] if guard["keep"] else
                    _metrics(uniform)[uniform_kind])
    spec = SamplerSpec(best, search.features, search.transform, str(feat_path), n, score,
                       search.grad_feature, data.train.fingerprint(), str(w_share_path),
                       run.model)
    probs = final_probs = family.probabilities(best)

    refine = {"ambiguous": None, "swapped": None, "retrained": False, "kept": False,
              "model": None, "wall_time": 0.0, "val_wins": 0, "val_losses": 0}
    refined = None
    if swift is not uniform and search.refine and search.references:
        mixture = mixture or loss_mixture(family, run.seed)
        share, cut = estimated_cut(family, search.segments, run.seed, mixture)
        estimate["share"] = share
        refine["ambiguous"] = None if mixture is None else mixture.ambiguous
        if cut is not None and mixture.ambiguous >= MIN_AMBIGUOUS:
            start = time.perf_counter()
            rfamily, rpath = _rescore(run, data, tcfg, search, swift.best_model(), out,
                                      progress)
            rparams, refine["swapped"] = rescored_cut(family, rfamily, share, search.segments)
            if noisy is not None:
                refine["loss_auroc"] = feature_auroc(rfamily.reference, noisy)["loss"]
            refine["wall_time"] = time.perf_counter() - start
            rprobs = rfamily.probabilities(rparams)
            refined = _retrain(run, data, tcfg, rprobs, out, progress, "refined")
            r_model, r_kind, _ = _end_model(refined, data.val, tcfg.device)
            # Against the Swift model it refines (the gate backs it, refined_cut.md): kept
            # unless validation prefers that one; against uniform: only if clearly better.
            r_guard = (paired_comparison if guard["keep"] else clearly_better)(
                r_model, kept_model, data.val, tcfg.device)
            refine.update(retrained=True, kept=r_guard["keep"], model=r_kind,
                          val_wins=r_guard["wins"], val_losses=r_guard["losses"],
                          wall_time=refine["wall_time"] + refined.final["wall_time"],
                          params=rparams.to_dict(),
                          sampler=sampler_diagnostics(rprobs, noisy, data.train.y))
            if r_guard["keep"]:
                chosen = "swift"
                kept_model, kept_metrics, final_probs = r_model, _metrics(refined)[r_kind], rprobs
                spec = SamplerSpec(rparams, rfamily.names, search.transform, str(rpath),
                                   n, None, search.grad_feature, data.train.fingerprint(),
                                   str(rpath.with_suffix(".model.pt")), run.model,
                                   refined=True)
    if writes:
        save_sampler(out / "sampler.json", spec)
        io.save_torch(out / "model.pt", kept_model.state_dict())

    unit = max(uniform.final["wall_time"], 1e-9)  # one training, in seconds
    search_seconds = result.wall_time + feature_seconds
    retrain_seconds = 0.0 if swift is uniform else swift.final["wall_time"]
    report = {
        "dataset": run.dataset, "noise": run.noise, "model": run.model, "seed": run.seed,
        "warnings": validation_warnings(len(data.val)),
        "uniform": _metrics(uniform), "swift": _metrics(swift),
        # The guards: each training's last epoch unless early stopping clearly beats it;
        # then the Swift model unless validation prefers the uniform one.
        "chosen": {"name": chosen, "uniform_model": uniform_kind, "swift_model": swift_kind,
                   "early_stop_wins": stop["wins"], "early_stop_losses": stop["losses"],
                   "swift_early_stop_wins": swift_stop["wins"],
                   "swift_early_stop_losses": swift_stop["losses"],
                   "val_wins": guard["wins"], "val_losses": guard["losses"],
                   "refined": refine["kept"], **kept_metrics},
        # The refinement: the share of examples the re-scored cut moves, and its training.
        "refine": {**refine, **({"metrics": _metrics(refined)} if refined else {})},
        "search": {
            "agent": search.agent, "transform": search.transform, "rounds": search.rounds,
            "parallel_trials": search.parallel_trials,
            "engine": engine if isinstance(engine, str) else engine.kind,
            "finetune_epochs": search.finetune_epochs,
            "finetune_budget": search.finetune_budget,
            "failed_trials": sum(r["score"] is None for r in result.trials),
            "best_val_acc": score, "best_params": best.to_dict(),
            "agent_recommendation": {"val_acc": result.best_score, "origin": result.origin},
            "best_origin": origin, "uniform_finetune_val_acc": reference,
            "estimated_noisy_share": estimate["share"],
            "estimated_cut_retrained": estimate["tried"],
            "wall_time": search_seconds,
            "cost_wall_trainings": search_seconds / unit,
            "agent_wall_trainings": result.agent_time / unit,
            "cost_epoch_trainings": search.rounds * search.finetune_epochs
            * search.finetune_budget / (run.epochs * run.budget),
        },
        "cost": {  # wall time of each step, in trainings (uniform's wall time)
            "w_share": 1.0, "features": feature_seconds / unit,
            "search": result.wall_time / unit, "retrain": retrain_seconds / unit,
            "refine": refine["wall_time"] / unit,
            "pipeline": (unit + search_seconds + retrain_seconds + refine["wall_time"]) / unit,
        },
        "diagnostics": _diagnostics(family, result, score, probs, noisy, uniform, data, tcfg,
                                    feats),
        "sampler_file": "sampler.json",
    }
    if not writes:  # distributed, rank 0 writes
        return report
    io.write_json(out / "report.json", report)
    io.write_text(out / "report.md", report_markdown(report))
    axis = loss_feature(search.features) or "loss"  # the figures' loss axis
    plots.plane_figure(feats[axis], feats["renormed_entropy"], data.train.noisy.cpu(),
                       final_probs, out / "fig1_plane.png", xlabel=axis)
    plots.loss_percentile_figure(feats[axis], final_probs, out / "fig2b_loss_percentile.png",
                                 xlabel=axis)
    plots.search_curves_figure({f"{search.agent}-{search.transform}":
                                [[r["score"] for r in result.trials]]}, out / "fig3_search.png")
    return report


# Below this many validation examples one standard error of an accuracy near 0.9 exceeds
# 1.7 points: the search's scores, the guards and early stopping select on coin flips (the
# 46-example split of breast cancer in benchmarks/results/swift_noise.md).
MIN_RELIABLE_VAL = 300


def _end_model(result: TrainResult, val, device: str, best=None):
    """``(model, kind, counts)``: ``result``'s last-epoch model (``kind`` "last_epoch"),
    unless its best-validation model ``best`` (default ``result.best_model()``) beats it on
    validation by ``EARLY_STOP_Z`` standard errors (:func:`~sampletune.swift.guard.
    clearly_better`; "early_stopped")."""
    best = result.best_model() if best is None else best
    stop = clearly_better(best, result.model, val, device, z=EARLY_STOP_Z)
    return (best, "early_stopped", stop) if stop["keep"] else (result.model, "last_epoch", stop)


def _retrain(run: RunConfig, data, tcfg, probs, out: Path, progress: bool,
             name: str = "swift") -> TrainResult:
    """Steps 4 and 6: train from scratch with sampling probabilities ``probs`` ``(N,)``,
    same config, seed and budget as w_share, in ``out/name``."""
    sampler = WeightedSampler(probs, epoch_draws(len(data.train), run.budget, run.batch_size),
                              seed=run.seed)
    return train(new_model(run, data), data, sampler, tcfg, run_dir=out / name,
                 progress=progress, description=f"{name} (from scratch)")


def _rescore(run: RunConfig, data, tcfg, search: SearchConfig, model, out: Path,
             progress: bool) -> tuple[SwiftFamily, Path]:
    """Step 6's features: the family on ``model``'s loss over the training set (eval mode),
    cached in ``out/features/refined/`` with ``model``'s weights beside them."""
    feats, path = cached_features(
        out / "features" / "refined", feature_key(run), model, data.train.x, data.train.y,
        device=tcfg.device, full_grad=search.grad_feature == "grad_norm_full",
        progress=progress)
    if current_world().rank == 0:
        io.save_torch(path.with_suffix(".model.pt"), model.state_dict())
    return SwiftFamily(feats, ("loss",), search.transform, search.grad_feature), path


def validation_warnings(n_val: int) -> list[str]:
    """What the report should warn about the validation split of ``n_val`` examples."""
    if n_val >= MIN_RELIABLE_VAL:
        return []
    return [f"the validation split has {n_val} examples (fewer than {MIN_RELIABLE_VAL}): the "
            "search's scores, the guards and early stopping select on differences of a few "
            "examples; a larger --val-fraction makes them reliable"]


def _metrics(result: TrainResult) -> dict:
    """Last-epoch metrics (also under ``last_epoch``), and early stopping's (the
    best-validation epoch's, under ``early_stopped``)."""
    f = result.final
    return {"test_acc": f["test_acc"], "val_acc": f["val_acc"], "wall_time": f["wall_time"],
            "last_epoch": {"epoch": f["epochs"] - 1, "val_acc": f["val_acc"],
                           "test_acc": f["test_acc"]},
            "early_stopped": {"epoch": f["best_epoch"], "val_acc": f["best_val_acc"],
                              "test_acc": f["best_test_acc"]}}


def _diagnostics(family: SwiftFamily, result, score: float, probs, noisy,
                 uniform: TrainResult, data, tcfg, feats) -> dict:
    """What tells why the search worked or not: the fine-tune score, mass on noisy labels
    and effective sample size of each reference sampler, the agent's recommendation and the
    sampler retrained (its fine-tune ``score`` and probabilities ``probs`` ``(N,)``), whether
    the references' scores are within validation noise of one another, and (with a noise
    mask) each feature's AUROC against it, from ``w_share`` and from the last epoch."""
    samplers = {}
    for r in result.trials:
        origin = r.get("origin", "agent")
        if origin != "agent" and r["score"] is not None:
            p = family.probabilities(SwiftParams.from_dict(r["params"]))
            samplers[origin] = {"finetune_val_acc": r["score"],
                                **sampler_diagnostics(p, noisy, data.train.y)}
    references = [m["finetune_val_acc"] for m in samplers.values()]  # the references' only
    samplers["agent's recommendation"] = {
        "finetune_val_acc": result.best_score,
        **sampler_diagnostics(family.probabilities(result.best), noisy, data.train.y)}
    samplers["retrained"] = {"finetune_val_acc": score,
                             **sampler_diagnostics(probs, noisy, data.train.y)}
    out = {"samplers": samplers}
    if len(references) >= 2:
        out["reference_spread"] = reference_spread(references, len(data.val))
    if noisy is not None:
        last = compute_features(uniform.model, data.train.x, data.train.y, device=tcfg.device,
                                progress=False)
        out["feature_auroc"] = {"w_share (best val epoch)": feature_auroc(feats, noisy),
                                "last epoch": feature_auroc(last, noisy)}
    return out


def kept_model_name(report: dict) -> str:
    """``swift, last epoch`` / ``uniform, early stopped`` / ``swift (refined cut), last
    epoch`` and the like: which training's model ``model.pt`` holds."""
    chosen = report["chosen"]
    name = chosen["name"]  # reports before round 3 kept early-stopped models only
    if chosen.get("refined"):
        return "swift (refined cut), " + report["refine"]["model"].replace("_", " ")
    return f"{name}, " + chosen.get(f"{name}_model", "early_stopped").replace("_", " ")


def _acc(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _search_outcome(s: dict) -> str:
    """What the search picked, and what was retrained from scratch."""
    origin = s["best_origin"]
    if origin == ESTIMATED_CUT:
        return (f"No sampler's fine-tune clearly beat uniform's; the cut at the estimated "
                f"noisy share {s['estimated_noisy_share']:.3f} was retrained from scratch and "
                "clearly beat uniform on validation, so it is the sampler.")
    text = f"best fine-tune validation accuracy {s['best_val_acc']:.4f} ({origin})"
    if origin != "uniform":
        return text + "."
    text += ": not clearly above uniform's, so the sampler is uniform"
    if s.get("estimated_cut_retrained"):
        return (text + f"; the cut at the estimated noisy share "
                f"{s['estimated_noisy_share']:.3f} was retrained from scratch (the Swift "
                "rows) and did not clearly beat uniform on validation.")
    return text + " and no Swift model was trained (its rows repeat uniform's)."


def _refine_lines(r: dict | None) -> list[str]:
    """What the refinement (step 6) did, as report lines."""
    if not r or r.get("ambiguous") is None:
        return []
    text = (f"Refinement: the mixture on w_share's loss leaves {100 * r['ambiguous']:.1f}% of "
            "the examples undecided")
    if not r["retrained"]:
        return [text + f" (under {100 * MIN_AMBIGUOUS:g}%): the cut was not re-scored."]
    m = r["metrics"][r["model"]]
    return [text + f"; re-scored by the Swift model the cut at the estimated noisy share moves "
            f"{100 * r['swapped']:.1f}% of the examples and was retrained from scratch "
            f"({r['model'].replace('_', ' ')}: test acc {m['test_acc']:.4f}, val acc "
            f"{m['val_acc']:.4f}); "
            + ("kept." if r["kept"] else
               f"not kept (validation {r['val_wins']} wins, {r['val_losses']} losses).")]


def _sampler_order(name: str) -> tuple:
    """The diagnostics' rows in the order the search made them, whatever order
    ``report.json`` (written with sorted keys) gives: uniform, the drop-top-q references by
    q, other references, the agent's recommendation, the sampler retrained."""
    last = ("agent's recommendation", "retrained")
    q = name.removeprefix("drop-top-")
    try:
        q = float(q) if q != name else -1.0
    except ValueError:
        q = math.inf
    return (last.index(name) + 1 if name in last else 0, name != "uniform", q, name)


def report_markdown(report: dict) -> str:
    """A short human-readable report of :func:`run_swift`'s result."""
    s, c, d = report["search"], report["cost"], report["diagnostics"]
    rows = [("uniform, last epoch", report["uniform"]),
            ("uniform, early stopped", report["uniform"]["early_stopped"]),
            ("swift sampler, last epoch", report["swift"]),
            ("swift sampler, early stopped", report["swift"]["early_stopped"]),
            (f"**kept** ({kept_model_name(report)})", report["chosen"])]
    lines = [
        f"# Swift Sampler: {report['dataset']}, noise {report['noise']}, {report['model']}, "
        f"seed {report['seed']}",
        "",
        *(f"**Warning:** {w}.\n" for w in report.get("warnings", [])),
        "| training | test acc | val acc |",
        "|---|---|---|",
        *(f"| {name} | {m['test_acc']:.4f} | {m['val_acc']:.4f} |" for name, m in rows),
        "",
        f"Search: {s['agent']}-{s['transform']}, {s['rounds']} trials x {s['finetune_epochs']} "
        f"fine-tune epochs at budget {s['finetune_budget']:.3f}, {s['failed_trials']} failed, "
        + _search_outcome(s),
        f"Cost in trainings of wall time (one training: {report['uniform']['wall_time']:.1f} s):"
        f" whole pipeline {c['pipeline']:.2f} (w_share 1, "
        f"features {c['features']:.2f}, search {c['search']:.2f}, retrain "
        f"{c['retrain']:.2f}, refinement {c.get('refine', 0.0):.2f}); search alone "
        f"{s['cost_wall_trainings']:.2f}, of which the agent's proposals "
        f"{s['agent_wall_trainings']:.2f}.",
        *_refine_lines(report.get("refine")),
        "",
        "## Diagnostics",
        "",
        "| sampler | fine-tune val acc | effective sample size | mass on noisy labels | "
        "least-drawn class (mass / share) |",
        "|---|---|---|---|---|",
        *(f"| {name} | {_acc(m['finetune_val_acc'])} | {m['ess']:.3f} | "
          + (f"{m['noisy_mass']:.3f}" if "noisy_mass" in m else "-") + " | "
          + (f"{m['least_drawn_class']} ({m['least_drawn_class_mass']:.2f})"
             if "least_drawn_class" in m else "-") + " |"
          for name, m in sorted(d["samplers"].items(), key=lambda kv: _sampler_order(kv[0]))),
        "",
    ]
    spread = d.get("reference_spread")
    if spread and spread["flat"]:
        lines.append(f"The reference samplers' fine-tunes scored within {spread['spread']:.3f} "
                     "of one another, under two standard errors of a validation accuracy "
                     f"({spread['two_se']:.3f}): the search could not tell uniform from "
                     "dropping the highest-loss examples, so the kept model rests on the "
                     "from-scratch retrains and the guards.")
    aurocs = d.get("feature_auroc", {})
    for model in sorted(aurocs, key=lambda m: m != "w_share (best val epoch)"):
        lines.append(f"Feature AUROC against the noise mask, {model}: " + ", ".join(
            f"{k} {v:.3f}" for k, v in sorted(aurocs[model].items()) if v is not None) + ".")
    lines += ["", f"Kept model: `model.pt` (a state_dict: {kept_model_name(report)}, "
              f"epoch {report['chosen']['epoch']}). Sampler: "
              f"`{report['sampler_file']}`; figures: fig1_plane.png, "
              "fig2b_loss_percentile.png, fig3_search.png.", ""]
    return "\n".join(lines)


def verify_run(out: str | Path, k: int = 10, *, select: str = "last",
               progress: bool = True) -> dict:
    """Appendix A.1.1 on a finished :func:`run_swift` directory: retrain ``k`` of its
    samplers (the last, or a spread over the score ranking) from scratch, with the run's
    config and seed, and report SR and TR."""
    out = Path(out)
    check((out / SETTINGS_FILE).exists() and (out / "sampler.json").exists(), "run",
          f"{out} is not a finished swift search directory")
    settings = io.read_json(out / SETTINGS_FILE, "run")
    check(isinstance(settings, dict) and isinstance(settings.get("run"), dict), "run",
          f"{out / SETTINGS_FILE} is not a swift search's settings file",
          "the run directory of `swift search`")
    recorded = dict(settings["run"])
    fingerprint = recorded.pop("data", None)  # absent in directories of earlier versions
    check(fingerprint is None or isinstance(fingerprint, str) and bool(fingerprint), "run",
          f"{out / SETTINGS_FILE} has a bad run.data {io.short_repr(fingerprint)}",
          "the training split's fingerprint swift search recorded")
    run = RunConfig.from_dict(recorded)
    data = load_data(run)
    split = fingerprint or load_sampler(out / "sampler.json").split
    check(split in ("", None, data.train.fingerprint()), "data_dir",
          f"{run.data_dir or run.dataset} now gives another training split than the search "
          f"in {out} was run on (fingerprint {data.train.fingerprint()}, not {split})",
          "the search's data, unchanged")
    # the searched family (the trials' features and settings), not sampler.json's, which
    # holds the refined cut's re-scored features when the refinement was kept
    search = settings.get("search")
    names = search.get("features") if isinstance(search, dict) else None
    check(isinstance(names, list) and all(isinstance(v, str) for v in names)
          and len(set(names)) == len(names)
          and all(isinstance(search.get(k), str) for k in ("transform", "grad_feature")),
          "run", f"{out / SETTINGS_FILE} holds no search settings (distinct features, "
          "transform, grad_feature)", "the run directory of `swift search`")
    n = len(data.train)
    feats = load_features(out / "features" / feature_key(run).filename(), n=n,
                          key=feature_key(run))
    try:
        family = SwiftFamily(feats, names, search["transform"], search["grad_feature"])
    except ConfigError as err:
        raise ConfigError("run", f"{out / SETTINGS_FILE}'s search settings: {err}") from None

    def scratch_score(params, trial: int) -> dict:
        sampler = WeightedSampler(family.probabilities(params),
                                  epoch_draws(n, run.budget, run.batch_size), seed=run.seed)
        res = train(new_model(run, data), data, sampler, run.train_config(), progress=False)
        return {k_: res.final[k_] for k_ in ("val_acc", "test_acc", "best_val_acc",
                                             "best_test_acc")}

    result = verify_search(out / "search", scratch_score, k, select=select, out_dir=out,
                           progress=progress)
    io.write_json(out / "verify.json", {k_: v for k_, v in result.items() if k_ != "records"})
    return result


# digits has 1,797 examples: a 20% validation split (359) keeps the search's score from
# drowning in the noise of a 144-example one.
DEMO_RUN = RunConfig(dataset="digits", noise=0.4, val_fraction=0.2, model="mlp", epochs=40,
                     batch_size=64, lr=0.05, lr_schedule="cosine", device="cpu")
DEMO_SEARCH = SearchConfig()


def demo(out_dir: str | Path = "runs/swift-demo", seeds: Sequence[int] = (0, 1, 2), *,
         progress: bool = True) -> dict:
    """The default job: digits with 40% symmetric noise, mlp; for each seed the whole
    ``swift search`` pipeline (uniform w_share with early stopping, 40 BO-cgf trials from
    the reference samplers, retrain, guard) and, for comparison, cleanlab's confident
    learning (if installed). Prints the test accuracy of each (mean over ``seeds``) and the
    cost in trainings; returns the means."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: extra threads only add overhead on 2 cores
    rows: dict[str, list[float]] = {"uniform (last epoch)": [], "uniform, early stopped": [],
                                    "cleanlab, early stopped": [],
                                    "swift search (kept model)": []}
    cost = {"cleanlab, early stopped": [], "swift search (kept model)": []}
    try:
        for s in seeds:
            run = DEMO_RUN.replace(seed=s, out=str(Path(out_dir) / f"seed{s}"))
            r = run_swift(run, DEMO_SEARCH, progress=progress)
            rows["uniform (last epoch)"].append(r["uniform"]["test_acc"])
            rows["uniform, early stopped"].append(r["uniform"]["early_stopped"]["test_acc"])
            rows["swift search (kept model)"].append(r["chosen"]["test_acc"])
            cost["swift search (kept model)"].append(r["cost"]["pipeline"])
            cleanlab = _demo_cleanlab(run, r["uniform"]["wall_time"], progress)
            if cleanlab is not None:
                rows["cleanlab, early stopped"].append(cleanlab[0])
                cost["cleanlab, early stopped"].append(cleanlab[1])
    finally:
        torch.set_num_threads(threads)
    mean = {k: sum(v) / len(v) for k, v in rows.items() if v}
    print(f"digits, 40% symmetric label noise, mlp, {len(seeds)} seed(s): test accuracy")
    for name, acc in mean.items():
        spend = f"   ({sum(cost[name]) / len(cost[name]):.1f}x one training)" \
            if cost.get(name) else ""
        print(f"  {name:<27} {acc:.4f}{spend}")
    if not rows["cleanlab, early stopped"]:
        print("  (cleanlab row skipped: pip install 'sampletune[cleanlab]')")
    return mean


def _demo_cleanlab(run: RunConfig, unit_seconds: float, progress: bool):
    """(test accuracy at the best-validation epoch, cost in trainings) of cleanlab's filter
    then uniform training on ``run``, or ``None`` without cleanlab."""
    import importlib.util

    if importlib.util.find_spec("cleanlab") is None:
        return None
    from sampletune.noisy import build_noisy

    data = load_data(run)
    cfg = run.train_config()
    start = time.perf_counter()  # the out-of-fold trainings happen in build_noisy
    method = build_noisy("cleanlab", data, cfg, model_fn=lambda: new_model(run, data),
                         progress=progress)
    res = method.train(new_model(run, data), data, cfg, run_dir=Path(run.out) / "cleanlab",
                       progress=progress)
    return res.final["best_test_acc"], (time.perf_counter() - start) / max(unit_seconds, 1e-9)
