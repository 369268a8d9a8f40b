import hashlib

import numpy as np
import pytest
import torch

from sampletune.autosampling.algorithm import worker_rng
from sampletune.autosampling.worker import interval_seed
from sampletune.errors import ConfigError
from sampletune.seeding import derive_seed, numpy_generator, seed_sequence, torch_generator


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
