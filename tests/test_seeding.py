import hashlib

import numpy as np
import pytest
import torch

from sampletune.autosampling.algorithm import worker_rng
from sampletune.autosampling.worker import interval_seed
from sampletune.errors import ConfigError
from sampletune.models import build_model
from sampletune.samplers import ShuffleSampler, WeightedSampler
from sampletune.seeding import (
    MAX_SEED,
    check_seed,
    derive_seed,
    numpy_generator,
    seed_sequence,
    torch_generator,
    torch_seed,
)
from sampletune.swift.search import FineTuner, SearchConfig
from sampletune.train import TrainConfig, seeded_model


def test_same_keys_same_seed_other_keys_other_seed():
    assert derive_seed(3, "study", 1) == derive_seed(3, "study", 1)
    seeds = {derive_seed(s, k, t) for s in (0, 1) for k in ("a", "b") for t in (0, 1, 2)}
    assert len(seeds) == 12
    assert 0 <= derive_seed(2**32 - 1, 7) < 2**32
    assert 2**32 <= derive_seed(0, "x", bits=64) < 2**64  # (this one's top word is not 0)


def test_it_is_seed_sequence_so_autosampling_streams_are_unchanged():
    # worker_rng and interval_seed were default_rng([s, c, w]) and
    # SeedSequence([s, 1, i, w]).generate_state(1)[0]: recorded schedules must not move.
    for s, c, w in [(0, 0, 0), (3, 5, 7), (2**32 - 1, 100, 19)]:
        assert np.array_equal(worker_rng(s, c, w).permutation(64),
                              np.random.default_rng([s, c, w]).permutation(64))
        assert interval_seed(s, c, w) == int(
            np.random.SeedSequence([s, 1, c, w]).generate_state(1)[0])
    assert np.array_equal(numpy_generator(1, 2).random(3), np.random.default_rng([1, 2]).random(3))
    assert derive_seed(0, 1, 2) == 3884055042  # pinned: never change a published stream


def test_torch_generator_is_seeded_from_64_bits():
    a, b = torch_generator(0, "sb"), torch_generator(0, "sb")
    assert torch.equal(torch.rand(5, generator=a), torch.rand(5, generator=b))
    assert a.initial_seed() == derive_seed(0, "sb", bits=64)
    assert not torch.equal(torch.rand(5, generator=torch_generator(0, "sa")),
                           torch.rand(5, generator=torch_generator(0, "sb")))


def test_string_keys_are_stable_across_processes():
    # SHA-256, not hash(): a fixed value.
    assert seed_sequence(0, "a").entropy == [0, int.from_bytes(
        hashlib.sha256(b"a").digest()[:8], "little")]


@pytest.mark.parametrize("args, field", [((-1,), "seed"), ((0, -2), "keys\\[0\\]"),
                                         ((0, 1.5), "keys\\[0\\]"), ((0, 1, None), "keys\\[1\\]"),
                                         ((True,), "seed")])
def test_bad_keys_are_config_errors(args, field):
    with pytest.raises(ConfigError, match=f"^{field}: "):
        derive_seed(*args)


def test_bits_are_32_or_64():
    with pytest.raises(ConfigError, match="^bits: "):
        derive_seed(0, bits=16)


def test_torch_seed_keeps_every_seed_torch_took_and_wraps_the_rest():
    for v in (0, 1, 7919, 2**32 - 1, 2**63 - 1, 2**63, 2**64 - 1):
        assert torch_seed(v) == v  # the draws of every formula that worked are unchanged
    assert torch_seed(2**64) == 0 and torch_seed(2**64 + 5) == 5
    assert torch_seed(-1) == 2**64 - 1  # what torch makes of -1
    big = (2**32 - 1) * 10_007 * 1_000_003 + 4  # FineTuner's seed at MAX_SEED, epoch 4
    with pytest.raises(ValueError):
        torch.Generator().manual_seed(big)
    torch.Generator().manual_seed(torch_seed(big))


def test_small_seeds_draw_what_they_always_drew():
    # pinned before torch_seed: the published runs' draws must not move
    s = ShuffleSampler(8, seed=3)
    s.set_epoch(2)
    assert s.epoch_indices().tolist() == [2, 3, 5, 7, 4, 0, 6, 1]
    assert ShuffleSampler(8, seed=0).epoch_indices().tolist() == [4, 0, 7, 3, 2, 5, 1, 6]
    probs = torch.linspace(0.1, 1, 8, dtype=torch.float64)
    w = WeightedSampler(probs, 6, seed=3 * 10_007)  # FineTuner's sampler at --seed 3
    w.set_epoch(1)
    assert w.epoch_indices().tolist() == [7, 7, 5, 6, 3, 4]
    # the largest FineTuner seed that fit torch's 64 bits before (--seed 1_843_378_508)
    w = WeightedSampler(probs, 6, seed=1_843_378_508 * 10_007)
    assert w.epoch_indices().tolist() == [5, 5, 6, 1, 7, 4]


def test_a_sampler_seed_past_64_bits_wraps():
    s = ShuffleSampler(8, seed=2**62)
    s.set_epoch(3)
    g = torch.Generator().manual_seed((2**62 * 1_000_003 + 3) % 2**64)
    assert torch.equal(s.epoch_indices(), torch.randperm(8, generator=g))


def test_the_largest_accepted_seed_fine_tunes(tiny_data):
    # `swift search --seed` above ~1.84e9 overflowed the sampler's seed in FineTuner
    cfg = TrainConfig(epochs=1, batch_size=32, lr=0.05)
    w_share = seeded_model(lambda: build_model("mlp", tiny_data.input_shape, 3), MAX_SEED)
    tuner = FineTuner(w_share, tiny_data, cfg, SearchConfig(finetune_epochs=2, seed=MAX_SEED))
    probs = torch.ones(len(tiny_data.train), dtype=torch.float64)
    assert 0.0 <= tuner(probs / probs.sum(), trial=0) <= 1.0
    check_seed(MAX_SEED)
