import math

import numpy as np
import pytest
import torch
from scipy import stats

from sampletune.errors import ConfigError
from sampletune.samplers import ShuffleSampler, UniformSampler, WeightedSampler
from sampletune.samplers.weighted import (
    AliasTable,
    sample_with_replacement,
    sample_without_replacement,
)

N = 100


def all_samplers():
    w = torch.rand(N, generator=torch.Generator().manual_seed(0)) + 0.1
    return [
        ShuffleSampler(N, seed=1), ShuffleSampler(N, budget=0.3, seed=1),
        UniformSampler(N, budget=0.5, seed=1),
        WeightedSampler(w, seed=1), WeightedSampler(w, 40, replacement=False, seed=1),
    ]


@pytest.mark.parametrize("sampler", all_samplers(), ids=lambda s: type(s).__name__)
def test_contract(sampler):
    """Every sampler: len matches iteration, indices in range, epoch-deterministic,
    different across epochs, state round-trips, iteration equals epoch_indices."""
    sampler.set_epoch(3)
    first = list(sampler)
    assert len(first) == len(sampler)
    assert all(0 <= i < N for i in first)
    assert first == sampler.epoch_indices().tolist()
    assert list(sampler) == first
    state = sampler.state_dict()
    sampler.set_epoch(4)
    assert list(sampler) != first
    sampler.load_state_dict(state)
    assert list(sampler) == first


@pytest.mark.parametrize("sampler", all_samplers(), ids=lambda s: type(s).__name__)
def test_sharding_partitions_the_global_draw(sampler):
    sampler.set_epoch(2)
    glob = sampler.epoch_indices().tolist()
    kind = type(sampler)
    shards = []
    for rank in range(3):
        s = kind.__new__(kind)
        s.__dict__.update(sampler.__dict__)
        s.num_replicas, s.rank = 3, rank
        shards.append(s.epoch_indices().tolist())
    assert {len(x) for x in shards} == {math.ceil(len(glob) / 3)}
    padded = glob + glob[: 3 * len(shards[0]) - len(glob)]
    assert [x for i in range(len(shards[0])) for x in (shards[0][i], shards[1][i], shards[2][i])] \
        == padded


def test_shuffle_is_a_permutation_and_budget_truncates():
    assert sorted(ShuffleSampler(N, seed=0)) == list(range(N))
    part = list(ShuffleSampler(N, budget=0.3, seed=0))
    assert len(part) == 30 and len(set(part)) == 30


def test_weighted_distribution_matches_weights():
    w = torch.tensor([1.0, 2.0, 3.0, 0.0, 4.0])
    s = WeightedSampler(w, 200_000, seed=0)
    freq = torch.bincount(s.epoch_indices(), minlength=5).double() / 200_000
    assert freq[3] == 0
    assert torch.allclose(freq, w.double() / w.sum(), atol=0.005)


def test_weighted_without_replacement_is_distinct_and_favours_heavy():
    w = torch.cat([torch.full((10,), 100.0), torch.full((90,), 1.0)])
    draws = WeightedSampler(w, 10, replacement=False, seed=0).epoch_indices()
    assert len(set(draws.tolist())) == 10
    assert (draws < 10).sum() >= 6


def test_without_replacement_never_draws_zero_weight():
    w = torch.tensor([0.0, 1.0, 1.0, 0.0])
    d = sample_without_replacement(w.double(), 2, torch.Generator().manual_seed(0))
    assert sorted(d.tolist()) == [1, 2]
    with pytest.raises(ConfigError, match="num_samples"):
        sample_without_replacement(w.double(), 3, torch.Generator())


def random_weights(seed, n):
    rs = np.random.default_rng(seed)
    w = rs.random(n) ** rs.integers(1, 8)  # from flat to very skewed
    w[rs.random(n) < rs.random()] = 0.0  # zeros, a random share of them
    w[0] += 1e-3  # not all zero
    if seed % 4 == 0:
        w = rs.integers(0, 3, n).astype(float)
        w[0] += 1  # many ties, exact multiples
    return w


@pytest.mark.parametrize("seed", range(40))
def test_alias_table_holds_the_weights(seed):
    """The table's implied probabilities are the normalised weights (to rounding at
    2**-s of a bucket); zero weights get exactly zero, positive ones more than zero."""
    w = random_weights(seed, 1 + seed * 7)
    p = AliasTable(torch.from_numpy(w)).probabilities()
    q = w / w.sum()
    assert np.all(p[w == 0] == 0) and np.all(p[w > 0] > 0)
    np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("w", [[1.0], [0.0, 1.0], [1e-300, 1.0], [5.0] * 7,
                               [1.0, 2.0, 3.0, 0.0, 4.0]])
def test_alias_table_edge_cases(w):
    w = np.array(w)
    table = AliasTable(torch.from_numpy(w))
    p = table.probabilities()
    assert np.all(p[w == 0] == 0) and np.all(p[w > 0] > 0)
    np.testing.assert_allclose(p, w / w.sum(), rtol=1e-9, atol=1e-15)
    d = table.sample(10_000, torch.Generator().manual_seed(0))
    assert d.dtype == torch.int64 and d.shape == (10_000,)
    assert bool((torch.from_numpy(w)[d] > 0).all())


@pytest.mark.parametrize("scale", [1e-300, 1e-320, 1e300, 5e307])
def test_alias_table_holds_weights_of_any_scale(scale):
    """Weights whose sum underflows the bucket scale or overflows float64 keep their
    proportions (they once put all the mass on one example)."""
    w = np.array([1.0, 1.0, 2.0, 0.0]) * scale
    p = AliasTable(torch.from_numpy(w)).probabilities()
    np.testing.assert_allclose(p, [0.25, 0.25, 0.5, 0.0], rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_weighted_draws_pass_chi_square(seed):
    """Frequencies of 400k draws from 60 skewed weights (some zero) against the weights."""
    w = random_weights(seed, 60)
    s = WeightedSampler(torch.from_numpy(w), 400_000, seed=seed)
    counts = torch.bincount(s.epoch_indices(), minlength=60).numpy()
    assert counts[w == 0].sum() == 0
    pos = w > 0
    expected = 400_000 * w[pos] / w.sum()
    chi2 = ((counts[pos] - expected) ** 2 / expected).sum()
    assert stats.chi2.sf(chi2, pos.sum() - 1) > 1e-4


def test_weighted_draws_are_iid_in_order():
    """No order effects: the first and second halves of an epoch, and consecutive pairs,
    look alike (the draw is i.i.d., not sorted)."""
    w = torch.tensor([1.0, 2.0, 3.0, 4.0])
    d = WeightedSampler(w, 200_000, seed=0).epoch_indices()
    a, b = torch.bincount(d[:100_000], minlength=4), torch.bincount(d[100_000:], minlength=4)
    assert stats.chi2_contingency(torch.stack([a, b]).numpy())[1] > 1e-4
    pairs = torch.bincount(d[:-1] * 4 + d[1:], minlength=16).reshape(4, 4).numpy()
    assert stats.chi2_contingency(pairs)[1] > 1e-4


def test_weighted_draw_depends_on_seed_and_epoch_alone():
    w = torch.rand(1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a, b = WeightedSampler(w, 5000, seed=7), WeightedSampler(w.clone(), 5000, seed=7)
    torch.rand(10)  # global RNG state plays no part
    a.set_epoch(2)
    b.set_epoch(2)
    assert torch.equal(a.epoch_indices(), b.epoch_indices())
    b.set_epoch(3)
    assert not torch.equal(a.epoch_indices(), b.epoch_indices())


def test_weighted_beyond_multinomial_limit():
    n = 2**24 + 10  # torch.multinomial refuses more than 2**24 categories
    w = torch.ones(n, dtype=torch.float64)
    w[-1] = 1e7  # the last example holds ~37% of the mass
    w[:5] = 0.0  # n - 6 ones remain
    s = WeightedSampler(w, 100_000, seed=0)
    d = s.epoch_indices()
    assert d.max() < n and d.min() >= 5
    share = (d == n - 1).double().mean().item()
    assert abs(share - 1e7 / (n - 6 + 1e7)) < 0.01
    assert s.alias.probabilities()[-1] == pytest.approx(1e7 / (n - 6 + 1e7), rel=1e-10)


def test_sample_with_replacement_matches_weights():
    w = torch.tensor([0.0, 1.0, 3.0], dtype=torch.float64)
    d = sample_with_replacement(w, 100_000, torch.Generator().manual_seed(0))
    freq = torch.bincount(d, minlength=3).double() / 100_000
    assert freq[0] == 0 and abs(freq[2].item() - 0.75) < 0.01


@pytest.mark.parametrize("bad,what", [
    (torch.tensor([1.0, -1.0]), "negative"), (torch.tensor([1.0, float("nan")]), "NaN"),
    (torch.tensor([1.0, float("inf")]), "infinite"), (torch.zeros(3), "all weights are zero"),
])
def test_bad_weights_are_one_line_errors(bad, what):
    with pytest.raises(ConfigError, match=f"^weights: .*{what}") as err:
        WeightedSampler(bad)
    assert "\n" not in str(err.value)


def test_bad_budget_and_rank():
    with pytest.raises(ConfigError, match="^budget"):
        UniformSampler(10, budget=0.0)
    with pytest.raises(ConfigError, match="^rank"):
        ShuffleSampler(10, num_replicas=2, rank=2)


def test_drop_in_for_dataloader():
    ds = torch.utils.data.TensorDataset(torch.arange(N))
    loader = torch.utils.data.DataLoader(ds, batch_size=10, sampler=WeightedSampler(torch.ones(N)))
    assert sum(len(b[0]) for b in loader) == N


def test_replicas_and_rank_default_from_an_initialised_process_group():
    import socket

    import torch.distributed as dist

    s = WeightedSampler(torch.ones(10))
    assert (s.num_replicas, s.rank) == (1, 0)  # no process group: the whole draw
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        s = WeightedSampler(torch.ones(10), seed=0)
        assert (s.num_replicas, s.rank) == (1, 0)
        s = WeightedSampler(torch.ones(10), seed=0, num_replicas=3, rank=2)  # explicit wins
        assert (s.num_replicas, s.rank) == (3, 2)
    finally:
        dist.destroy_process_group()
    assert not dist.is_initialized()


def test_replicas_and_rank_default_from_world_size_and_rank(monkeypatch):
    """A 4-rank group (simulated): each rank's default shard is its slice of one draw."""
    import torch.distributed as dist

    w = torch.rand(50, generator=torch.Generator().manual_seed(0))
    glob = WeightedSampler(w, 50, seed=5).epoch_indices().tolist()
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 4)
    shards = []
    for rank in range(4):
        monkeypatch.setattr(dist, "get_rank", lambda rank=rank: rank)
        s = WeightedSampler(w, 50, seed=5)
        assert (s.num_replicas, s.rank, len(s)) == (4, rank, 13)
        shards.append(list(s))
    padded = glob + glob[:2]  # 52 = 4 * 13: wrapped, not dropped
    assert [shards[r][i] for i in range(13) for r in range(4)] == padded


def test_adaptive_samplers_shard_from_the_process_group_too(monkeypatch):
    import torch.distributed as dist

    from sampletune.samplers import PSGDSampler

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    s = PSGDSampler(10, budget=0.5, seed=0)
    assert (s.num_replicas, s.rank, len(s)) == (2, 1, 3)


def test_drop_last_cuts_the_draw_instead_of_padding():
    glob = ShuffleSampler(11, seed=2).epoch_indices().tolist()
    shards = [ShuffleSampler(11, seed=2, num_replicas=3, rank=r, drop_last=True)
              for r in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]  # 11 // 3, the last 2 draws dropped
    drawn = [list(s) for s in shards]
    assert [drawn[r][i] for i in range(3) for r in range(3)] == glob[:9]
    w = WeightedSampler(torch.ones(11), seed=2, num_replicas=3, rank=0, drop_last=True)
    assert len(w) == len(w.epoch_indices()) == 3
    with pytest.raises(ConfigError, match="^drop_last: 2 draws leave nothing"):
        ShuffleSampler(2, num_replicas=3, rank=0, drop_last=True)


def _ddp_worker(rank, world, port, queue):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        w = torch.rand(1001, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        w[:100] = 0.0
        s = WeightedSampler(w, seed=0)  # num_replicas / rank from the group
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(1001)),
                                             batch_size=64, sampler=s)
        draws = []
        for epoch in range(2):
            s.set_epoch(epoch)
            draws.append(torch.cat([b[0] for b in loader]).tolist())
        queue.put((rank, s.num_replicas, draws))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_gloo_job_shards_one_draw():
    """A real 2-rank job: each rank draws alone, and the ranks' shards interleave into the
    single-process draw of the same (seed, epoch), padded by wrapping."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    try:
        res = sorted(queue.get(timeout=120) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert [(r, n) for r, n, _ in res] == [(0, 2), (1, 2)]
    w = torch.rand(1001, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w[:100] = 0.0
    for epoch in range(2):
        ref = WeightedSampler(w, seed=0, num_replicas=1)
        ref.set_epoch(epoch)
        glob = ref.epoch_indices().tolist()
        shards = [d[epoch] for _, _, d in res]
        assert [len(x) for x in shards] == [501, 501]
        assert [shards[r][i] for i in range(501) for r in range(2)] == glob + glob[:1]
        assert min(min(x) for x in shards) >= 100  # zero weights never drawn
    assert res[0][2][0] != res[0][2][1]  # set_epoch changes the draw


def test_sampler_registry_core_names_and_family_registration(tiny_data):
    from sampletune.samplers import build_sampler, factory, register_sampler, sampler_names
    from sampletune.swift import sampler_file  # noqa: F401  (registers 'swift')

    assert sampler_names()[:5] == ("uniform", "shuffle", "with-replacement", "oracle",
                                   "weights")
    assert "swift" in sampler_names() and "shuffle" not in sampler_names(aliases=False)
    assert isinstance(build_sampler("shuffle", tiny_data, seed=3), ShuffleSampler)
    with pytest.raises(ConfigError, match="^sampler: unknown sampler 'nope'.*swift"):
        build_sampler("nope", tiny_data)
    with pytest.raises(ValueError, match="already registered"):
        register_sampler("uniform")(lambda data, **kw: None)

    @register_sampler("test-probe")
    def probe(data, *, budget, seed, weights_path):
        return UniformSampler(len(data.train), budget=budget, seed=seed)

    try:
        s = build_sampler("test-probe", tiny_data, budget=0.5, seed=1)
        assert isinstance(s, UniformSampler) and "test-probe" in sampler_names()
    finally:
        del factory._BUILDERS["test-probe"]
