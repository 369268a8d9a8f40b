import pytest
import torch
from torch import nn

from sampletune.errors import ConfigError
from sampletune.samplers import csgd_probabilities, psgd_probabilities, seen_mean
from sampletune.samplers.adaptive import CSGDSampler, PSGDSampler
from sampletune.train import BatchReport, TrainConfig, seeded_model, train


def report(idx, true_prob, epoch=0):
    idx = torch.as_tensor(idx)
    p = torch.as_tensor(true_prob, dtype=torch.float32)
    return BatchReport(epoch, 0, idx, -p.log(), p)


def test_running_mean_and_smoothing_follow_eq2():
    s = PSGDSampler(4, budget=0.5)
    s.on_batch(report([0, 1, 2, 3], [0.9, 0.5, 0.1, 0.5]))
    s.on_batch(report([0, 1], [0.7, 0.3]))  # seen twice: mean over the sightings
    mean = torch.tensor([0.2, 0.6, 0.9, 0.5], dtype=torch.float64)
    assert torch.allclose(s.running_mean(), mean)
    imp = mean + mean.mean()  # epsilon^t = mean importance
    assert torch.allclose(s.importance(), imp)
    assert torch.allclose(s.probabilities(), imp / imp.sum())  # eq. 3


def test_c_sgd_prefers_uncertain_examples():
    s = CSGDSampler(3, budget=0.5)
    s.on_batch(report([0, 1, 2], [0.99, 0.5, 0.01]))
    p = s.probabilities()
    assert p[1] > p[0] and p[1] > p[2]
    m = s.running_mean()
    c = m * (1 - m)
    assert torch.allclose(s.importance(), c + c.mean())


def test_unseen_examples_get_the_largest_mean():
    s = PSGDSampler(4, budget=0.5)
    s.on_batch(report([0, 1], [0.9, 0.4]))
    assert torch.allclose(s.running_mean()[2:], torch.tensor([0.6, 0.6], dtype=torch.float64))


def test_warmup_is_uniform_then_weighted():
    s = PSGDSampler(4, budget=0.5, warmup_epochs=2)
    s.on_batch(report([0, 1, 2, 3], [0.99, 0.99, 0.99, 0.01]))
    s.set_epoch(1)
    assert torch.allclose(s.probabilities(), torch.full((4,), 0.25, dtype=torch.float64))
    s.set_epoch(2)
    assert s.probabilities()[3] > 0.25


def test_draws_n_times_budget_distinct_and_follow_p():
    n = 50
    s = PSGDSampler(n, budget=0.3, seed=3)
    s.on_batch(report(torch.arange(n), torch.linspace(0.01, 0.99, n)))
    idx = s.epoch_indices()
    assert len(idx) == 15 and len(set(idx.tolist())) == 15
    s2 = PSGDSampler(n, budget=1.0, replacement=True, seed=3)
    s2.num_samples = 200_000
    s2.on_batch(report(torch.arange(n), torch.linspace(0.01, 0.99, n)))
    freq = torch.bincount(s2.epoch_indices(), minlength=n).double() / 200_000
    assert torch.allclose(freq, s2.probabilities(), atol=3e-3)


def test_state_dict_resumes_exactly():
    a = PSGDSampler(30, budget=0.4, seed=1)
    a.on_batch(report(torch.arange(30), torch.rand(30, generator=torch.Generator().manual_seed(0))))
    a.set_epoch(3)
    b = PSGDSampler(30, budget=0.4, seed=1)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.epoch_indices(), b.epoch_indices())
    assert not torch.equal(a.epoch_indices(), PSGDSampler(30, budget=0.4, seed=1).epoch_indices())
    with pytest.raises(ConfigError, match="^state_dict"):
        PSGDSampler(31, budget=0.4).load_state_dict(a.state_dict())


@pytest.mark.parametrize("true_prob", [float("nan"), 2.0])
def test_a_diverged_observation_is_an_error_not_uniform_sampling(true_prob):
    for sampler in (PSGDSampler(4), CSGDSampler(4)):
        sampler.on_batch(report([0, 1, 2, 3], [true_prob, 0.1, 0.5, 0.5]))
        with pytest.raises(ConfigError, match="^importance: 1 example"):
            sampler.probabilities()


def test_bad_arguments():
    with pytest.raises(ConfigError, match="^budget"):
        PSGDSampler(10, budget=0)
    with pytest.raises(ConfigError, match="^warmup_epochs"):
        PSGDSampler(10, warmup_epochs=-1)


def test_trained_sampler_is_observed_and_focuses_on_hard_examples(tiny_data):
    n = len(tiny_data.train)
    s = PSGDSampler(n, budget=0.5, seed=0)
    model = seeded_model(lambda: nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), 0)
    cfg = TrainConfig(epochs=4, batch_size=32, lr=0.1, budget=0.5)
    train(model, tiny_data, s, cfg, progress=False, evaluate_test=False)
    assert (s.weight_sum > 0).float().mean() > 0.9
    # noisy labels are hard: p-SGD gives them more probability than clean ones
    p = s.probabilities()
    noisy = tiny_data.train.noisy.cpu()
    assert p[noisy].mean() > 1.5 * p[~noisy].mean()


def test_pure_rules_are_what_the_samplers_draw_from():
    idx, p = torch.tensor([0, 1, 2, 1]), torch.tensor([0.9, 0.5, 0.1, 0.3])
    for cls, rule in ((PSGDSampler, psgd_probabilities), (CSGDSampler, csgd_probabilities)):
        s = cls(5, budget=0.6)
        s.observe(idx, p)  # what a user's own loop calls
        mean = seen_mean(s.hardness_sum, s.weight_sum)
        assert mean.tolist() == pytest.approx([0.1, 0.6, 0.9, 0.9, 0.9])  # unseen: the max
        assert torch.equal(rule(mean), s.probabilities())
    assert torch.equal(csgd_probabilities(torch.ones(3)),
                       torch.full((3,), 1 / 3, dtype=torch.float64))  # all fitted: uniform
    with pytest.raises(ConfigError, match="^weight_sum: "):
        seen_mean(torch.zeros(3), torch.zeros(4))
