"""Bad arguments to the samplers are one-line ConfigErrors naming the field, never a raw
traceback from deep inside torch and never a silently different draw."""

import numpy as np
import pytest
import torch

from sampletune.errors import ConfigError
from sampletune.samplers import PSGDSampler, ShuffleSampler, UniformSampler, WeightedSampler
from sampletune.samplers.weighted import (
    AliasTable,
    sample_with_replacement,
    sample_without_replacement,
)
from sampletune.seeding import check_seed


def one_line_error(field, make):
    with pytest.raises(ConfigError, match=f"^{field}: ") as err:
        make()
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize("weights,what", [
    (torch.ones(10, 2), "not 1-D"),  # was flattened: indices up to 19 for 10 rows
    (torch.tensor(3.0), "not 1-D"),
    (torch.tensor([1 + 1j, 2 + 0j]), "complex"),  # lost its imaginary part
    ("abc", "not an array of numbers"),
])
def test_weights_must_be_one_real_value_per_example(weights, what):
    assert what in one_line_error("weights", lambda: WeightedSampler(weights))


@pytest.mark.parametrize("make", [
    lambda: ShuffleSampler(0), lambda: ShuffleSampler(-3), lambda: ShuffleSampler(2.5),
    lambda: UniformSampler(0), lambda: PSGDSampler(0),
])
def test_example_count_is_a_positive_integer(make):
    one_line_error("n", make)


@pytest.mark.parametrize("seed", [1.7, -1, 2**64, 2**70, "a", None, True])
def test_seed_is_an_integer_torch_takes(seed):
    one_line_error("seed", lambda: WeightedSampler(torch.ones(5), seed=seed))
    one_line_error("seed", lambda: ShuffleSampler(5).load_state_dict({"epoch": 0, "seed": seed}))


def test_user_seeds_are_32_bit_integers():
    check_seed(2**32 - 1)
    for seed in (1.7, "3", True, 2**32):
        one_line_error("seed", lambda seed=seed: check_seed(seed))


@pytest.mark.parametrize("field,make", [
    ("num_replicas", lambda: ShuffleSampler(10, num_replicas="2")),
    ("num_replicas", lambda: ShuffleSampler(10, num_replicas=2.0, rank=0)),
    ("rank", lambda: WeightedSampler(torch.ones(5), num_replicas=2, rank=1.5)),
    ("drop_last", lambda: ShuffleSampler(10, drop_last="no")),
    ("replacement", lambda: WeightedSampler(torch.ones(5), replacement="no")),
    ("replacement", lambda: PSGDSampler(5, replacement=1)),
    ("warmup_epochs", lambda: PSGDSampler(5, warmup_epochs=1.5)),
    ("budget", lambda: ShuffleSampler(10, budget="0.5")),
])
def test_sharding_flags_and_budget_are_checked(field, make):
    one_line_error(field, make)


def test_integer_arguments_refuse_floats_and_take_numpy_integers():
    one_line_error("epoch", lambda: ShuffleSampler(5).set_epoch(1.9))
    w = torch.linspace(0.1, 1, 9)
    a = WeightedSampler(w, seed=np.int64(3), num_replicas=np.int64(2), rank=np.int64(1))
    b = WeightedSampler(w, seed=3, num_replicas=2, rank=1)
    a.set_epoch(np.int64(4))
    b.set_epoch(4)
    assert list(a) == list(b)


def test_epoch_is_an_integer_below_the_seed_stride():
    # seed * 1_000_003 + epoch: seed 0 at epoch 1_000_003 would draw seed 1's epoch 0
    for epoch in (-1, "x", 1_000_003):
        one_line_error("epoch", lambda epoch=epoch: ShuffleSampler(5).set_epoch(epoch))
    s = ShuffleSampler(8, seed=2)
    s.set_epoch(1_000_002)  # the last epoch keeps its draw
    g = torch.Generator().manual_seed(2 * 1_000_003 + 1_000_002)
    assert torch.equal(s.epoch_indices(), torch.randperm(8, generator=g))


def test_state_dict_names_what_it_lacks():
    assert "'epoch'" in one_line_error("state_dict", lambda: ShuffleSampler(5).load_state_dict({}))
    s = PSGDSampler(5)
    msg = one_line_error("state_dict", lambda: s.load_state_dict({"epoch": 1, "seed": 0}))
    assert "'hardness_sum'" in msg
    state = {**s.state_dict(), "hardness_sum": [1.0] * 5}
    one_line_error("state_dict", lambda: s.load_state_dict(state))
    assert s.epoch == 0  # nothing taken from a refused state


@pytest.mark.parametrize("field,indices,true_prob", [
    ("indices", [7], [0.5]), ("indices", [-1], [0.5]),
    ("indices", torch.tensor([1.0, 2.0]), [0.1, 0.5]),
    ("true_prob", [1, 2], [0.5]),
])
def test_psgd_observe_checks_its_report(field, indices, true_prob):
    s = PSGDSampler(5, budget=0.6)
    one_line_error(field, lambda: s.observe(torch.as_tensor(indices), torch.as_tensor(true_prob)))
    assert not s.weight_sum.any()  # nothing was counted


def _draw_with(helper, weights, k=2, generator=...):
    """One draw by ``helper`` ("alias", "with" or "without") called as a user would
    (``...``: a seeded CPU generator)."""
    generator = torch.Generator().manual_seed(0) if generator is ... else generator
    if helper == "alias":
        return AliasTable(weights).sample(k, generator)
    draw = sample_with_replacement if helper == "with" else sample_without_replacement
    return draw(weights, k, generator)


HELPERS = ("alias", "with", "without")


@pytest.mark.parametrize("helper", HELPERS)
@pytest.mark.parametrize("weights,what", [
    (torch.ones(2, 3), "not 1-D"),  # the alias table flattened it: 6 examples
    (torch.tensor(2.0), "not 1-D"),
    (torch.zeros(0), "is empty"),
    (torch.tensor([1.0, -1.0, 2.0]), "1 negative"),  # drawn first without replacement
    (torch.tensor([1.0, float("nan"), 2.0]), "1 NaN"),  # the alias table drew only 0
    (torch.tensor([1.0, float("inf"), 2.0]), "1 infinite"),
    (torch.tensor([1 + 1j, 2 + 0j]), "complex"),  # lost its imaginary part
    ("abc", "not an array of numbers"),
])
def test_sampling_helpers_check_their_weights(helper, weights, what):
    assert what in one_line_error("weights", lambda: _draw_with(helper, weights))


@pytest.mark.parametrize("helper", ("alias", "with"))
def test_all_zero_weights_are_refused_not_drawn_as_index_zero(helper):
    one_line_error("weights", lambda: _draw_with(helper, torch.zeros(3)))


@pytest.mark.parametrize("helper", HELPERS)
@pytest.mark.parametrize("k,what", [
    (2.0, "not an integer"), (2.5, "not an integer"), (True, "not an integer"),
    ("3", "not an integer"), (None, "not an integer"), (-1, "below 0"),
])
def test_sampling_helpers_take_an_integer_count(helper, k, what):
    assert what in one_line_error("num_samples",
                                  lambda: _draw_with(helper, torch.ones(3), k=k))


@pytest.mark.parametrize("helper", HELPERS)
@pytest.mark.parametrize("generator", [0, "cpu", np.random.default_rng(0), None])
def test_sampling_helpers_take_a_torch_generator(helper, generator):
    # None drew from torch's global RNG: not a function of the caller's seed
    one_line_error("generator", lambda: _draw_with(helper, torch.ones(3), generator=generator))


def test_without_replacement_takes_weights_as_the_other_helpers_do():
    """A list or array draws as the tensor does (a list was a TypeError)."""
    ref = _draw_with("without", torch.tensor([0.0, 1.0, 3.0]))
    assert torch.equal(_draw_with("without", [0.0, 1.0, 3.0]), ref)


def test_without_replacement_draws_on_the_generators_device():
    weights = torch.ones(3, device="meta")  # weights on another device than the generator
    assert "on cpu" in one_line_error("generator", lambda: _draw_with("without", weights))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_generator_on_the_wrong_cuda_or_cpu_device():
    cuda = torch.Generator("cuda").manual_seed(0)
    one_line_error("generator", lambda: _draw_with("alias", torch.ones(3), generator=cuda))
    one_line_error("generator", lambda: _draw_with("without", torch.ones(3, device="cuda")))
