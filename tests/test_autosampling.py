"""AutoSampling: the pure exploit/explore steps, the recorded schedule and its replay, the
in-process search (exactness, resume) and the command line."""

import argparse
import dataclasses

import numpy as np
import pytest
import torch

from sampletune.autosampling import (
    RecordedSchedule,
    cycle_streams,
    draw_stream,
    estimate_distribution,
    exploit,
    explore_weights,
    plan_cycles,
    plan_intervals,
    smooth_distribution,
    worker_rng,
)
from sampletune.autosampling import search as search_mod
from sampletune.autosampling.replay import ScheduleSampler, static_sampler
from sampletune.autosampling.search import SearchConfig, search
from sampletune.errors import ConfigError
from sampletune.train import TrainConfig, seeded_model, train

# ---- pure steps -----------------------------------------------------------------------


def test_plans_cover_epochs_and_batches():
    assert plan_cycles(10, 4, 3) == [4, 4, 2]
    assert plan_cycles(5, 0, 3) == [4, 1]
    assert plan_cycles(3, 20, 3) == [3]
    assert plan_intervals(25, 20) == [20, 5]
    assert plan_intervals(40, 20) == [20, 20]
    with pytest.raises(ConfigError, match="^nu:"):
        plan_cycles(10, 2, -1)


def test_exploit_picks_best_and_breaks_ties_by_lowest_id():
    assert exploit([0.5, 0.7, 0.7, 0.6]) == 1
    assert exploit([0.9]) == 0
    assert exploit([0.1, 0.2, 0.3]) == 2


def test_estimate_distribution_is_eq6():
    p = estimate_distribution(np.array([0, 0, 1, 3]), 5)
    np.testing.assert_allclose(p, [0.5, 0.25, 0.0, 0.25, 0.0])


def test_smoothing_keeps_zeros_at_beta_one_and_flattens_with_beta():
    p = np.array([0.7, 0.3, 0.0, 0.0])
    s1 = smooth_distribution(p, 1.0)
    assert s1.sum() == pytest.approx(1.0) and s1[2] == 0.0 and s1[0] > s1[1] > 0
    np.testing.assert_allclose(s1, np.log1p(p) / np.log1p(p).sum())
    s100 = smooth_distribution(p, 100.0)
    assert np.ptp(s100) < 0.01 < np.ptp(s1)
    with pytest.raises(ConfigError, match="^beta:"):
        smooth_distribution(p, 0.5)


def test_mixture_stream_keeps_every_example_and_follows_weights():
    n, nu = 50, 3
    w = np.zeros(n)
    w[7] = 1.0
    s = draw_stream(w, n, nu, worker_rng(0, 1, 2))
    counts = np.bincount(s, minlength=n)
    assert len(s) == (nu + 1) * n
    assert counts.min() == nu  # the N_u uniform epochs cover every example
    assert counts[7] == n + nu  # the weighted epoch drew only example 7
    assert s[:n].tolist() != sorted(s[:n].tolist())  # shuffled union
    again = draw_stream(w, n, nu, worker_rng(0, 1, 2))
    other = draw_stream(w, n, nu, worker_rng(0, 1, 3))
    assert np.array_equal(s, again) and not np.array_equal(s, other)


def test_explore_weights_by_type():
    last = np.array([0, 0, 1])
    assert explore_weights("random", last, 4, 1.0) is None
    assert explore_weights("mixture", None, 4, 1.0) is None  # first cycle: uniform
    np.testing.assert_allclose(explore_weights("mixture", last, 4, 1.0),
                               smooth_distribution(estimate_distribution(last, 4), 1.0))
    with pytest.raises(ConfigError, match="^exploration:"):
        explore_weights("greedy", last, 4, 1.0)


def test_cycle_streams_depend_only_on_seed_cycle_worker():
    a = cycle_streams(None, 30, 1, 6, 8, seed=3, cycle=2, workers=2)
    b = cycle_streams(None, 30, 1, 6, 8, seed=3, cycle=2, workers=4)
    assert a[0].shape == (6, 8) and a[0].dtype == np.int64
    assert all(np.array_equal(x, y) for x, y in zip(a, b[:2], strict=False))
    with pytest.raises(ConfigError, match="^batches:"):
        cycle_streams(None, 30, 0, 6, 8, seed=3, cycle=2, workers=1)


# ---- recorded schedule and replay ---------------------------------------------------


def _toy_schedule() -> RecordedSchedule:
    s = RecordedSchedule(num_examples=10, batch_size=2, steps_per_epoch=3)
    s.append([0, 1, 2, 3], epoch=0, worker=1, val_acc=0.5)
    s.append([4, 4], epoch=0, worker=0, val_acc=0.6)
    s.append([9, 8, 7, 6], epoch=1, worker=2, val_acc=0.7)
    s.append([5, 5], epoch=1, worker=2, val_acc=0.8)
    return s


def test_schedule_roundtrip_epochs_and_counts(tmp_path):
    s = _toy_schedule()
    s.save(tmp_path / "s.npz")
    t = RecordedSchedule.load(tmp_path / "s.npz")
    assert t.num_epochs == 2 and t.num_intervals == 4 and t.workers == [1, 0, 2, 2]
    assert t.epoch_indices(1).tolist() == [9, 8, 7, 6, 5, 5]
    assert t.counts(0, 1).tolist() == [1, 1, 1, 1, 2, 0, 0, 0, 0, 0]
    np.testing.assert_allclose(t.distribution(), s.counts() / 12)
    with pytest.raises(ConfigError, match="^indices:"):
        s.append([1, 2, 3], epoch=2, worker=0, val_acc=0.1)
    with pytest.raises(ConfigError, match="^epoch:"):
        t.epoch_indices(2)


def test_schedule_sampler_replays_and_shards():
    s = _toy_schedule()
    sampler = ScheduleSampler(s)
    sampler.set_epoch(1)
    assert sampler.epoch_indices().tolist() == [9, 8, 7, 6, 5, 5]
    assert len(sampler) == 6 and sampler.state_dict()["epoch"] == 1
    ranks = [ScheduleSampler(s, num_replicas=2, rank=r) for r in (0, 1)]
    for r in ranks:
        r.set_epoch(0)
    assert sorted(sum((r.epoch_indices().tolist() for r in ranks), [])) == [0, 1, 2, 3, 4, 4]
    static = static_sampler(s, seed=1)
    np.testing.assert_allclose(static.probabilities.numpy(), s.distribution())
    assert len(static.epoch_indices()) == 6


# ---- the search ---------------------------------------------------------------------


def _cfgs(**search_kw):
    train_cfg = TrainConfig(epochs=4, batch_size=16, lr=0.05, seed=0)
    scfg = SearchConfig(workers=3, interval=5, warmup=1, nu=1, **search_kw)
    return train_cfg, scfg


def test_search_records_the_best_workers_exact_batches(tiny_data, tmp_path):
    train_cfg, scfg = _cfgs()
    r = search("mlp", tiny_data, train_cfg, scfg, tmp_path, progress=False, plots=False)
    s = r.schedule
    n, steps = len(tiny_data.train), len(tiny_data.train) // 16
    assert s.num_epochs == 4 and s.epoch_length == steps * 16
    assert [len(i) // 16 for i in s.intervals[:4]] == plan_intervals(steps, 5)
    # each recorded interval is the winner's slice of its own stream (cycles [1, 2, 1])
    streams = cycle_streams(None, n, 0, steps, 16, seed=0, cycle=0, workers=3)
    pos = 0
    for idx, w in zip(s.intervals[:4], s.workers[:4], strict=True):
        assert np.array_equal(idx, streams[w][pos:pos + len(idx) // 16].ravel())
        pos += len(idx) // 16
    assert [c["worker_epochs"] for c in r.curves] == [3, 6, 9, 12]
    assert (tmp_path / "schedule.npz").exists() and (tmp_path / "distribution.npy").exists()
    np.testing.assert_allclose(np.load(tmp_path / "distribution.npy"), s.distribution())


def test_dynamic_replay_reproduces_the_searched_model(tiny_data, tmp_path):
    """The winner's trajectory is init -> recorded interval 1 -> 2 -> ...: replaying H* with
    the same model, seed and settings gives bit-identical weights."""
    from sampletune.models import build_model

    train_cfg, scfg = _cfgs()
    r = search("mlp", tiny_data, train_cfg, scfg, tmp_path, progress=False, plots=False)
    model = seeded_model(lambda: build_model("mlp", tiny_data.input_shape, 3), 0)
    replayed = train(model, tiny_data, ScheduleSampler(r.schedule), train_cfg, progress=False)
    for k, v in replayed.model.state_dict().items():
        assert torch.equal(v, r.model_state[k]), k


def test_mixture_explores_from_last_cycle_counts(tiny_data, tmp_path, monkeypatch):
    seen = []
    real = search_mod.explore_weights

    def spy(exploration, last, n, beta):
        seen.append(None if last is None else np.bincount(last, minlength=n))
        return real(exploration, last, n, beta)

    monkeypatch.setattr(search_mod, "explore_weights", spy)
    train_cfg, scfg = _cfgs()
    r = search("mlp", tiny_data, train_cfg, scfg, tmp_path, progress=False, plots=False)
    assert seen[0] is None and len(seen) == 3  # cycles [1, 2, 1]
    assert np.array_equal(seen[1], r.schedule.counts(0, 1))
    assert np.array_equal(seen[2], r.schedule.counts(1, 3))


def test_uniform_is_one_worker_and_random_ignores_counts(tiny_data, tmp_path):
    train_cfg, _ = _cfgs()
    uni = SearchConfig(workers=5, exploration="uniform", warmup=1, nu=1, interval=5)
    r = search("mlp", tiny_data, train_cfg, uni, tmp_path / "u", progress=False, plots=False)
    assert uni.population == 1 and set(r.schedule.workers) == {0}
    assert r.final["worker_epochs"] == 4 and r.final["evaluations"] == 4  # one per epoch
    _, rnd = _cfgs(exploration="random")
    _, mix = _cfgs(exploration="mixture")
    a = search("mlp", tiny_data, train_cfg, rnd, tmp_path / "r", progress=False, plots=False)
    b = search("mlp", tiny_data, train_cfg, mix, tmp_path / "m", progress=False, plots=False)
    # identical through the warm-up cycle, then the mixture's draws differ
    assert np.array_equal(a.schedule.indices(0, 1), b.schedule.indices(0, 1))
    assert not np.array_equal(a.schedule.indices(1, 4), b.schedule.indices(1, 4))


def test_bad_settings_name_the_field(tiny_data, tmp_path):
    with pytest.raises(ConfigError, match="^beta:"):
        SearchConfig(beta=0.5)
    with pytest.raises(ConfigError, match="^engine:"):
        SearchConfig(engine="spark")
    train_cfg, scfg = _cfgs()
    with pytest.raises(ConfigError, match="^batch_size:"):
        search("mlp", tiny_data, train_cfg.replace(batch_size=10_000), scfg, tmp_path,
               progress=False)
    with pytest.raises(ConfigError, match="^budget:"):
        search("mlp", tiny_data, train_cfg.replace(budget=0.5), scfg, tmp_path, progress=False)
    search("mlp", tiny_data, train_cfg.replace(epochs=1), scfg, tmp_path / "x",
           progress=False, plots=False)
    with pytest.raises(ConfigError, match="^out:.*nu"):
        search("mlp", tiny_data, train_cfg.replace(epochs=1), dataclasses.replace(scfg, nu=2),
               tmp_path / "x", progress=False, plots=False)


def test_search_writes_figures_and_report(tiny_data, tmp_path):
    from sampletune import io

    train_cfg, scfg = _cfgs()
    search("mlp", tiny_data, train_cfg, scfg, tmp_path, progress=False)
    for f in ("histograms.png", "frequency_vs_loss.png", "convergence.png", "losses.npz",
              "model.pt", "curves.json"):
        assert (tmp_path / f).stat().st_size > 0, f
    report = io.read_json(tmp_path / "report.json")
    assert set(report["loss_frequency_spearman"]) == {"1", "3", "4"}
    assert "counts_per_epoch_noisy" in report["distribution"]  # tiny_data has 30% noise


# ---- command line -------------------------------------------------------------------


def _parser():
    from sampletune.commands.autosampling import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_search_then_replay(tmp_path, capsys):
    run = tmp_path / "search"
    common = ["--dataset", "digits", "--train-subset", "300", "--noise", "0", "--epochs", "2",
              "--batch-size", "32", "--device", "cpu"]
    args = _parser().parse_args(["autosampling", "search", *common, "--workers", "2",
                                 "--warmup", "1", "--nu", "0", "--out", str(run), "--quiet"])
    assert args.func(args) == 0
    assert "autosampling mixture on digits" in capsys.readouterr().out
    for mode in ("dynamic", "static"):
        args = _parser().parse_args(["autosampling", "replay", *common, "--model", "smallcnn",
                                     "--schedule", str(run / "schedule.npz"), "--mode", mode,
                                     "--quiet"])  # another architecture (Table 10)
        assert args.func(args) == 0
        assert f"{mode} replay" in capsys.readouterr().out
    args = _parser().parse_args(["autosampling", "replay", *common[:-4], "--epochs", "3",
                                 "--schedule", str(run / "schedule.npz"), "--quiet"])
    with pytest.raises(ConfigError, match="^epochs:"):
        args.func(args)
    # Same size, another split (seed): the recorded indices would name other examples.
    args = _parser().parse_args(["autosampling", "replay", *common, "--seed", "1",
                                 "--schedule", str(run / "schedule.npz"), "--quiet"])
    with pytest.raises(ConfigError, match="^schedule: was recorded on another training split "
                       r"\(\d+ examples in both, but its labels differ in order or value\)"):
        args.func(args)


def test_uniform_stream_is_plain_training():
    """With no learned distribution (warm-up, uniform and random exploration) a worker's
    stream is consecutive permutations, i.e. ordinary shuffled epochs."""
    from sampletune.autosampling.algorithm import draw_stream

    stream = draw_stream(None, 10, 2, np.random.default_rng(0))
    assert stream.shape == (30,)
    for epoch in stream.reshape(3, 10):
        assert sorted(epoch.tolist()) == list(range(10))


def test_a_ray_address_without_the_ray_engine_is_refused_not_ignored():
    with pytest.raises(ConfigError, match="^ray_address: is an option of the ray engine"):
        SearchConfig(ray_address="head:6379")
    with pytest.raises(ConfigError, match="^ray_num_cpus: is an option of the ray engine"):
        SearchConfig(ray_num_cpus=4)
    assert SearchConfig(engine="ray", ray_address="head:6379").ray_address == "head:6379"


# ---- reliability: memory, resume, damaged files, Ray address, config ------------------


def test_uniform_streams_draw_only_the_epochs_a_cycle_uses(monkeypatch):
    """A uniform stream is consecutive permutations: a cycle cut short (or a huge nu) draws
    only the permutations it trains, and the same ones as a full draw."""
    import sampletune.autosampling.algorithm as algorithm

    asked, real = [], algorithm.draw_stream

    def spy(weights, n, uniform_epochs, rng):
        asked.append(uniform_epochs)
        return real(weights, n, min(uniform_epochs, 3), rng)

    monkeypatch.setattr(algorithm, "draw_stream", spy)
    short = algorithm.cycle_streams(None, 30, 10**9, 6, 8, seed=3, cycle=2, workers=2)
    assert asked == [1, 1]  # 48 indices: two permutations of 30
    full = cycle_streams(None, 30, 3, 6, 8, seed=3, cycle=2, workers=2)
    assert all(np.array_equal(a, b) for a, b in zip(short, full, strict=True))


def test_a_mixture_of_more_uniform_epochs_than_the_search_is_refused(tiny_data, tmp_path):
    train_cfg, scfg = _cfgs()
    with pytest.raises(ConfigError, match="^nu: 5 uniform epochs per mixture exceed"):
        search("mlp", tiny_data, train_cfg, dataclasses.replace(scfg, nu=5), tmp_path,
               progress=False, plots=False)


@pytest.mark.parametrize("checkpoint_every", [0.0, 30.0])
def test_search_killed_after_any_interval_resumes_bit_identically(tiny_data, tmp_path,
                                                                   monkeypatch, checkpoint_every):
    """With --checkpoint-every 0 a checkpoint follows every interval (at the default, each
    cycle's end); a search killed after each one (mid-epoch, mid-cycle) still ends with the
    uninterrupted schedule and model."""
    train_cfg, scfg = _cfgs()
    full = search("mlp", tiny_data, train_cfg, scfg, tmp_path / "a", progress=False,
                  plots=False)
    real = search_mod._checkpoint

    def killed(path, state):
        real(path, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(search_mod, "_checkpoint", killed)
    every = train_cfg.replace(checkpoint_every=checkpoint_every)
    kills, resumed = 0, None
    while resumed is None and kills <= 16:
        try:
            resumed = search("mlp", tiny_data, every, scfg, tmp_path / "b", progress=False,
                             plots=False)
        except KeyboardInterrupt:
            kills += 1
    if checkpoint_every == 0:
        assert kills == full.schedule.num_intervals == 16  # one session per interval
    else:
        assert 1 <= kills < 16  # one per cycle
    a, b = full.schedule.to_arrays(), resumed.schedule.to_arrays()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    drop = ("time",)
    assert ([{k: v for k, v in c.items() if k not in drop} for c in full.curves]
            == [{k: v for k, v in c.items() if k not in drop} for c in resumed.curves])
    for k, v in full.model_state.items():
        assert torch.equal(v, resumed.model_state[k]), k
    with np.load(tmp_path / "a" / "losses.npz") as x, np.load(tmp_path / "b" / "losses.npz") as y:
        assert sorted(x) == sorted(y) and all(np.array_equal(x[k], y[k]) for k in x)


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory):
    """A finished two-epoch search (its checkpoint.pt is the state after the last cycle)."""
    from helpers import tiny_splits

    out = tmp_path_factory.mktemp("finished")
    data, train_cfg = tiny_splits(), TrainConfig(epochs=2, batch_size=16, lr=0.05, seed=0)
    scfg = SearchConfig(workers=2, interval=5, warmup=1, nu=0)
    search("mlp", data, train_cfg, scfg, out, progress=False, plots=False)
    return out, data, train_cfg, scfg


@pytest.mark.parametrize("damage", [
    {"curves": []}, {"curves": [{"epoch": 0}] * 2}, {"curves": "x"}, {"elapsed": "x"},
    {"elapsed": float("nan")}, {"elapsed": -1.0}, {"evaluations": -3}, {"losses": {}},
    {"split": 5}, {"schedule": "drop the last interval"},
])
def test_a_damaged_checkpoint_is_a_one_line_error(finished_search, tmp_path, damage):
    import shutil

    run, data, train_cfg, scfg = finished_search
    out = tmp_path / "run"
    shutil.copytree(run, out)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    if damage.get("schedule"):
        arrays = {k: v.numpy() for k, v in state["schedule"].items()}
        s = RecordedSchedule.from_arrays({**arrays, "split": np.array(state["split"])})
        s.intervals, s.epochs_of, s.workers, s.val_acc = (x[:-1] for x in (
            s.intervals, s.epochs_of, s.workers, s.val_acc))
        damage = {**damage, "schedule": search_mod._tensors(s.to_arrays())}
    torch.save({**state, **damage}, out / "checkpoint.pt")
    with pytest.raises(ConfigError, match="^checkpoint: .* does not fit this search") as err:
        search("mlp", data, train_cfg, scfg, out, progress=False, plots=False)
    assert "\n" not in str(err.value)


def test_the_ray_engine_without_ray_is_refused_before_the_run_directory(tiny_data, tmp_path,
                                                                       monkeypatch):
    import sampletune.ray_cluster as ray_cluster

    def missing(allowed):
        raise ConfigError("engine", "ray is not installed", allowed)

    monkeypatch.setattr(ray_cluster, "import_ray", missing)
    train_cfg, scfg = _cfgs()
    with pytest.raises(ConfigError, match="^engine: ray is not installed"):
        search("mlp", tiny_data, train_cfg, dataclasses.replace(scfg, engine="ray"),
               tmp_path / "r", progress=False, plots=False)
    assert not (tmp_path / "r").exists()  # nothing claimed, nothing to clean up


def test_a_ray_address_that_does_not_answer_is_refused_before_ray_starts(tiny_data, tmp_path,
                                                                         monkeypatch):
    """``ray.init`` waits forever (deaf to Ctrl-C) for an address nobody listens on (the
    check is in ``ray_cluster.start_ray``, which Swift's Ray engine shares)."""
    import socket
    import types

    import sampletune.ray_cluster as ray_cluster

    def never(**kw):
        raise AssertionError("ray.init reached with an unreachable address")

    fake_ray = types.SimpleNamespace(is_initialized=lambda: False, init=never)
    monkeypatch.setattr(ray_cluster, "import_ray", lambda allowed: fake_ray)
    with socket.socket() as s:  # a local port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    train_cfg, scfg = _cfgs()
    for address, match in ((f"127.0.0.1:{port}", "cannot reach a Ray cluster"),
                           (f"ray://localhost:{port}", "cannot reach a Ray cluster"),
                           ("headnode", "'headnode' is not host:port")):
        cfg = dataclasses.replace(scfg, engine="ray", ray_address=address)
        with pytest.raises(ConfigError, match=f"^ray_address: {match}"):
            search("mlp", tiny_data, train_cfg, cfg, tmp_path / "r", progress=False,
                   plots=False)


@pytest.fixture(scope="module")
def cli_search(tmp_path_factory):
    """A tiny search run by the command line, and the flags it was run with."""
    run = tmp_path_factory.mktemp("cli") / "search"
    common = ["--dataset", "digits", "--train-subset", "300", "--epochs", "2",
              "--batch-size", "32", "--device", "cpu"]
    args = _parser().parse_args(["autosampling", "search", *common, "--workers", "2",
                                 "--warmup", "1", "--nu", "0", "--out", str(run), "--quiet"])
    assert args.func(args) == 0
    return run, common


def test_train_only_settings_in_yaml_are_refused_not_dropped(cli_search, tmp_path):
    run, common = cli_search
    config = tmp_path / "c.yaml"
    for text, field in (("augment: standard\n", "augment"),
                        ("sampling: {sampler: loss}\n", "sampler"),
                        ("weights: w.npy\n", "weights")):
        config.write_text(text)
        for command in (["search", "--workers", "2", "--warmup", "1", "--nu", "0"],
                        ["replay", "--schedule", str(run / "schedule.npz")]):
            args = _parser().parse_args(["autosampling", *command, *common, "--config",
                                         str(config), "--out", str(tmp_path / "x"), "--quiet"])
            with pytest.raises(ConfigError, match=f"^{field}: .* is only used by train"):
                args.func(args)
    # a train run's config.yaml holds every field: its sampling defaults are accepted
    config.write_text("augment: none\nsampler: uniform\nepochs: 1\n")
    args = _parser().parse_args(["autosampling", "replay", *common[:-4], "--config",
                                 str(config), "--schedule", str(run / "schedule.npz"),
                                 "--quiet"])
    assert args.func(args) == 0


def test_replay_takes_epochs_and_batch_size_from_yaml(cli_search, tmp_path, capsys):
    from sampletune import io

    run, common = cli_search
    config = tmp_path / "c.yaml"
    config.write_text("train: {epochs: 1}\n")
    out = tmp_path / "replay"
    args = _parser().parse_args(["autosampling", "replay", *common[:4], "--config",
                                 str(config), "--schedule", str(run / "schedule.npz"),
                                 "--out", str(out), "--quiet"])
    assert args.func(args) == 0
    assert io.read_json(out / "config.json")["epochs"] == 1
    assert io.read_json(out / "config.json")["batch_size"] == 32  # the recorded one
    config.write_text("batch_size: 16\n")
    args = _parser().parse_args(["autosampling", "replay", *common[:4], "--config",
                                 str(config), "--schedule", str(run / "schedule.npz"),
                                 "--quiet"])
    with pytest.raises(ConfigError, match="^batch_size: 16 differs from the recorded 32"):
        args.func(args)


def test_plot_labels_every_run_and_writes_only_png(cli_search, tmp_path, monkeypatch):
    import sampletune.autosampling.plots as plots
    from sampletune import io

    run, _ = cli_search
    drawn = {}
    monkeypatch.setattr(plots, "convergence",
                        lambda curves, path, key: drawn.update(curves) or path)
    args = _parser().parse_args(["autosampling", "plot", str(run), str(run),
                                 "--output", str(tmp_path / "c.png")])
    assert args.func(args) == 0
    assert list(drawn) == ["mixture (search)", "mixture (search) #2"]
    killed = tmp_path / "killed"  # what a search killed after its first epoch leaves
    killed.mkdir()
    (killed / "search.json").write_bytes((run / "search.json").read_bytes())
    io.write_json(killed / "curves.json", io.read_json(run / "curves.json")[:1])
    drawn.clear()
    args = _parser().parse_args(["autosampling", "plot", str(killed), "--output",
                                 str(tmp_path / "c.png")])
    assert args.func(args) == 0
    epochs = io.read_json(run / "search.json")["train"]["epochs"]
    assert list(drawn) == [f"mixture (killed, unfinished: 1 of {epochs} epochs)"]
    args = _parser().parse_args(["autosampling", "plot", str(run), "--output",
                                 str(tmp_path / "c.txt")])
    with pytest.raises(ConfigError, match="^output: .* does not end in .png"):
        args.func(args)
