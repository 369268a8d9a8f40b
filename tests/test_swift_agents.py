import math
import re

import pytest
import torch

from sampletune.errors import ConfigError
from sampletune.swift.agents import AGENTS, BOAgent, RandomAgent, RLAgent, make_agent

FAST_BO = {"n_init": 3, "num_restarts": 2, "raw_samples": 32}


def _score(x):
    return float(-((x - 0.3) ** 2).sum())


def _agent(name, seed=0, dim=4):
    return make_agent(name, dim, seed, **(FAST_BO if name == "bo" else {}))


def _run(agent, steps):
    xs = []
    for _ in range(steps):
        x = agent.ask()
        xs.append(x)
        agent.tell(x, _score(x))
    return xs


@pytest.mark.parametrize("name", AGENTS)
def test_agents_are_deterministic_in_the_cube_and_leave_global_rng(name):
    state = torch.get_rng_state()
    a, b = _run(_agent(name), 5), _run(_agent(name), 5)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(x.shape == (4,) and x.dtype == torch.float64 for x in a)
    assert all(bool((x >= 0).all() and (x <= 1).all()) for x in a)
    c = _run(_agent(name, seed=1), 5)
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize("name", AGENTS)
def test_replaying_the_history_restores_the_agent(name):
    live = _agent(name)
    _run(live, 5)
    replayed = _agent(name)
    for x, s in zip(live.xs, live.scores, strict=True):
        replayed.tell(x, s)
    assert torch.equal(live.ask(), replayed.ask())
    assert torch.equal(live.ask(), live.ask())  # ask does not change the agent


@pytest.mark.parametrize("name", AGENTS)
def test_failed_trials_are_told_as_none(name):
    agent = _agent(name)
    for i in range(5):
        x = agent.ask()
        agent.tell(x, None if i % 2 else _score(x))
    assert agent.scores[1] is None and agent.imputed()[1] == min(agent.imputed())
    x = agent.ask()
    assert bool(torch.isfinite(x).all())


def test_bo_moves_towards_the_optimum():
    agent = BOAgent(2, seed=0, n_init=4, num_restarts=4, raw_samples=64)
    _run(agent, 14)
    best = max(agent.scores)
    assert best > -0.01  # optimum 0 at (0.3, 0.3); Sobol points alone are far worse
    assert max(agent.scores[:4]) < best


def test_rl_policy_mean_moves_towards_a_better_point():
    agent = RLAgent(2, seed=0)
    agent.tell(torch.tensor([0.5, 0.5], dtype=torch.float64), 0.0)
    agent.tell(torch.tensor([0.5, 0.5], dtype=torch.float64), 0.0)
    agent.tell(torch.tensor([0.9, 0.1], dtype=torch.float64), 1.0)
    assert agent.mu[0] > 0 > agent.mu[1]


def test_unknown_agent_is_a_config_error():
    with pytest.raises(ConfigError, match="agent"):
        make_agent("cmaes", 3)


@pytest.mark.parametrize("name, options, field, match", [
    ("bo", {"num_restarts": 0}, "agent_options.num_restarts", "0 is below 1"),
    ("bo", {"raw_samples": 0}, "agent_options.raw_samples", "0 is below 1"),
    ("bo", {"n_init": 0}, "agent_options.n_init", "0 is below 1"),
    ("bo", {"n_init": -3}, "agent_options.n_init", "-3 is below 1"),
    ("bo", {"fit_maxiter": 0}, "agent_options.fit_maxiter", "0 is below 1"),
    ("bo", {"acqf_maxiter": 0}, "agent_options.acqf_maxiter", "0 is below 1"),
    ("bo", {"refit_every": 0}, "agent_options.refit_every", "0 is below 1"),
    ("bo", {"beta": -1.0}, "agent_options.beta", "-1.0 is out of range"),
    ("rl", {"init_sigma": 0.0}, "agent_options.init_sigma", "0.0 is out of range"),
    ("rl", {"init_sigma": 5.0}, "agent_options.init_sigma", "5.0 is out of range"),
    ("rl", {"lr": 0.0}, "agent_options.lr", "0.0 is out of range"),
    ("rl", {"lr": -0.5}, "agent_options.lr", "-0.5 is out of range"),
    ("rl", {"lr_sigma": -0.5}, "agent_options.lr_sigma", "-0.5 is out of range"),
    ("bo", {"beta": math.inf}, "agent_options.beta", "inf is not a finite number"),
    ("rl", {"lr": math.nan}, "agent_options.lr", "nan is not a finite number"),
    ("bo", {"n_init": 1.5}, "agent_options.n_init", "1.5 is not an integer"),
    ("bo", {"ard": "no"}, "agent_options.ard", "'no' is not true or false"),
    ("bo", {"unknown_key": 1}, "agent_options", "the bo agent has no option 'unknown_key'"),
    ("random", {"n_init": 5}, "agent_options", "the random agent has no option 'n_init'"),
    ("bo", {"seed": 3}, "agent_options", "the bo agent has no option 'seed'"),
])
def test_agent_options_are_checked_before_the_search_not_cast(name, options, field, match):
    """Each would otherwise be cast (int(1.5), bool("no")) or fail mid-search."""
    with pytest.raises(ConfigError, match=f"^{re.escape(field)}: {re.escape(match)}"):
        make_agent(name, 10, 0, **options)


@pytest.mark.parametrize("make, field, match", [
    (lambda: BOAgent(3, n_init=2.5), "n_init", "2.5 is not an integer"),  # was int(2.5)
    (lambda: BOAgent(3, raw_samples=True), "raw_samples", "True is not an integer"),
    (lambda: BOAgent(3, ard="no"), "ard", "'no' is not a bool"),  # was bool("no")
    (lambda: BOAgent(3, beta=math.inf), "beta", "inf is not finite"),
    (lambda: RLAgent(3, init_sigma=math.inf), "init_sigma", "inf is not finite"),  # NaN points
    (lambda: RLAgent(3, init_sigma=0.01), "init_sigma", "0.01 is out of range"),
    (lambda: RLAgent(3, lr_sigma=-1.0), "lr_sigma", "-1.0 is out of range"),  # was "lr: "
    (lambda: RLAgent(3, lr="0.5"), "lr", "'0.5' is not a number"),
])
def test_agents_built_directly_check_their_options(make, field, match):
    with pytest.raises(ConfigError, match=f"^{re.escape(field)}: {re.escape(match)}") as err:
        make()
    assert "\n" not in str(err.value)


def test_bo_ucb_is_the_posterior_mean_plus_sqrt_beta_sigma():
    agent = BOAgent(3, seed=0, **FAST_BO, refit_every=1)
    _run(agent, 6)
    x = torch.rand(5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    mean, var = agent._posterior(x)
    assert torch.allclose(agent.ucb(x), mean + (2.0 * var).sqrt())  # beta = 2


def test_bo_between_refits_conditions_on_every_point_with_the_last_fit():
    agent = BOAgent(3, seed=0, **FAST_BO, refit_every=100)
    _run(agent, 4)
    first_fit = agent._hyper
    _run(agent, 2)
    assert agent._hyper is first_fit  # hyperparameters from the fit at n_init points ...
    assert len(agent._posterior.x) == len(agent.xs)  # ... the posterior has every point
    agent = BOAgent(3, seed=0, **FAST_BO, refit_every=1)
    _run(agent, 4)
    first_fit = agent._hyper
    _run(agent, 1)
    assert agent._hyper is not first_fit


def test_recommend_is_the_top_score_or_the_gp_mean():
    agent = RandomAgent(2, seed=0)
    for x, s in (([0.1, 0.1], 0.5), ([0.2, 0.2], None), ([0.3, 0.3], 0.9), ([0.4, 0.4], 0.9)):
        agent.tell(torch.tensor(x, dtype=torch.float64), s)
    assert agent.recommend() == 2  # the earliest of the top scores; failures never
    bo = BOAgent(3, seed=0, **FAST_BO)
    _run(bo, 6)
    ok = [i for i, s in enumerate(bo.scores) if s is not None]
    mean, _ = bo._posterior(torch.stack([bo.xs[i] for i in ok]))
    assert bo.recommend() == ok[int(mean.argmax())]
