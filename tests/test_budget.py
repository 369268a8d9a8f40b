import math

import pytest
import torch
from helpers import checkpoint_epoch

from sampletune.budget import (
    METHOD_NAMES,
    build_method,
    count_entropy,
    kcenter_greedy,
    mean_std,
    normalized_entropy,
    random_subset,
    speedup,
)
from sampletune.budget.measures import SampleCounter
from sampletune.budget.methods import epoch_draws
from sampletune.errors import ConfigError
from sampletune.models import build_model
from sampletune.samplers.adaptive import CSGDSampler, PSGDSampler
from sampletune.selection import OrderedSGD, SelectiveBackprop
from sampletune.train import BatchReport, TrainConfig, seeded_model

CFG = TrainConfig(epochs=10, batch_size=32, lr=0.05, budget=0.3, lr_schedule="linear")


def test_methods_spend_the_budget_as_section_3_says(tiny_data):
    n = len(tiny_data.train)  # 270
    k = 64  # round(270 * 0.3) = 81 examples, rounded down to whole batches of 32
    m = {name: build_method(name, tiny_data, CFG) for name in METHOD_NAMES}
    assert m["scan-sgd"].epochs == 3 and len(m["scan-sgd"].sampler) == n
    assert m["osgd"].epochs == 3 and isinstance(m["osgd"].selector, OrderedSGD)
    assert m["osgd"].observers == [m["osgd"].selector]
    for name in ("unif-sgd", "p-sgd", "c-sgd"):
        assert m[name].epochs == 10 and len(m[name].sampler) == k
        assert m[name].steps_per_epoch == math.ceil(k / 32)
    assert isinstance(m["p-sgd"].sampler, PSGDSampler)
    assert isinstance(m["c-sgd"].sampler, CSGDSampler)
    sb = m["sb"]
    assert isinstance(sb.selector, SelectiveBackprop) and sb.selector.beta == pytest.approx(7 / 3)
    assert len(sb.sampler) == n and sb.epochs == 10 and sb.steps_per_epoch == math.ceil(n / 32)
    with pytest.raises(ConfigError, match="^method"):
        build_method("focal", tiny_data, CFG)


def test_epoch_draws_are_whole_batches():
    assert epoch_draws(3600, 0.5, 128) == 1792  # not 1800: no trailing batch of 8
    assert epoch_draws(3600, 0.2, 128) == 640  # rounded down: never over the budget
    assert epoch_draws(100, 0.5, 128) == 50
    assert epoch_draws(300, 0.99, 128) == 256
    assert epoch_draws(3600, 1.0, 128) == 3600  # a full budget is a full pass
    assert all(epoch_draws(n, b, 32) <= round(n * b) for n in (100, 270, 999)
               for b in (0.2, 0.3, 0.5, 0.9))


def test_entropy_of_sample_counts():
    assert count_entropy(torch.full((100,), 3)) == pytest.approx(math.log(100))
    assert normalized_entropy(torch.full((100,), 3)) == pytest.approx(1.0)
    assert count_entropy(torch.tensor([0, 0, 7, 0])) == pytest.approx(0.0)
    skewed = torch.tensor([10, 1, 1, 1])
    assert 0 < count_entropy(skewed) < math.log(4)
    c = SampleCounter(5)
    c.on_batch(BatchReport(0, 0, torch.tensor([1, 1, 3]), torch.zeros(3), torch.ones(3)))
    assert c.counts.tolist() == [0, 2, 0, 1, 0]


def test_summary_measures():
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(2 ** 0.5))  # sample std, ddof 1
    assert mean_std([5.0]) == (5.0, 0.0)
    assert speedup(30.0, 100.0) == pytest.approx(70.0)


def test_kcenter_greedy_covers_every_cluster():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]])
    pts = torch.cat([c + torch.randn(50, 2, generator=g) for c in centres])
    chosen = kcenter_greedy(pts, 4, torch.Generator().manual_seed(1))
    assert sorted((chosen // 50).tolist()) == [0, 1, 2, 3]
    r = random_subset(200, 30, g)
    assert len(r.unique()) == 30


def test_fixed_subsets_repeat_the_same_examples(tiny_data):
    model_fn = lambda: seeded_model(  # noqa: E731
        lambda: build_model("mlp", tiny_data.input_shape, tiny_data.num_classes), 0)
    for name in ("random-subset", "coreset"):
        m = build_method(name, tiny_data, CFG, model_fn=model_fn)
        m.sampler.set_epoch(0)
        a = set(m.sampler.epoch_indices().tolist())
        m.sampler.set_epoch(5)
        assert set(m.sampler.epoch_indices().tolist()) == a and len(a) == 64
    with pytest.raises(ConfigError, match="^method: 'coreset' needs a model"):
        build_method("coreset", tiny_data, CFG)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_every_method_trains_within_its_budget(tiny_data, name):
    cfg = CFG.replace(epochs=4, budget=0.5)
    model = seeded_model(lambda: build_model("mlp", tiny_data.input_shape, 3), 0)
    method = build_method(name, tiny_data, cfg, augment="standard")
    result = method.train(model, tiny_data, cfg, progress=False)
    f = result.final
    assert 0 <= f["test_acc"] <= 1 and f["method"] == name and f["budget"] == 0.5
    assert f["used_budget"] == pytest.approx(0.5, abs=0.12)
    assert 0 < f["entropy_normalized"] <= 1
    if name == "sb":
        assert f["sb_extra_forward"] == pytest.approx(1 / 3, abs=0.01)
        assert f["sb_effective_budget"] == pytest.approx(0.5 + 1 / 3, abs=0.12)


class Interrupt:
    """Observer that stops training at the first step of epoch ``at`` (a simulated kill)."""

    def __init__(self, at):
        self.at = at

    def on_batch(self, report):
        if report.epoch == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("name", ["p-sgd", "sb"])
def test_killed_run_resumes_to_the_same_weights(tiny_data, tmp_path, name):
    cfg = CFG.replace(epochs=4, budget=0.5, checkpoint_every=0)

    def run(run_dir, stop_at):
        model = seeded_model(lambda: build_model("mlp", tiny_data.input_shape, 3), 0)
        method = build_method(name, tiny_data, cfg, augment="mixup")
        method.observers.append(Interrupt(stop_at))
        return method.train(model, tiny_data, cfg, run_dir=run_dir, progress=False)

    ref = run(tmp_path / "a", stop_at=-1)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", stop_at=2)
    assert checkpoint_epoch(tmp_path / "b") == 1
    resumed = run(tmp_path / "b", stop_at=-1)
    for p, q in zip(ref.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert resumed.final["test_acc"] == ref.final["test_acc"]
