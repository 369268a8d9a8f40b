import math

import pytest
import torch
from torch import nn

from sampletune.augment import build_augment
from sampletune.budget.methods import build_method
from sampletune.errors import ConfigError
from sampletune.samplers import ShuffleSampler
from sampletune.selection import (
    OrderedSGD,
    SelectiveBackprop,
    sb_keep_probability,
    sb_select,
    selectivity_for_budget,
)
from sampletune.train import BatchReport, TrainConfig, Trainer, seeded_model, train


def small_model(seed=0):
    return seeded_model(lambda: nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), seed)


def test_keep_probability_is_history_cdf_to_the_b():
    sb = SelectiveBackprop(4, beta=2.0, history=8)
    p = sb.keep_probability(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert torch.allclose(p, torch.tensor([0.25, 0.5, 0.75, 1.0]) ** 2)
    p = sb.keep_probability(torch.tensor([0.0, 10.0]))  # history: 6 losses
    assert torch.allclose(p, torch.tensor([1 / 6, 1.0]) ** 2)


def test_history_keeps_only_the_last_r_losses():
    sb = SelectiveBackprop(4, beta=1.0, history=4)
    sb.keep_probability(torch.tensor([100.0, 100.0, 100.0, 100.0]))
    sb.keep_probability(torch.tensor([1.0, 2.0]))
    p = sb.keep_probability(torch.tensor([3.0, 4.0]))  # the 100s before are gone
    assert torch.allclose(p, torch.tensor([0.75, 1.0]))


def test_default_selectivity_keeps_budget_fraction():
    assert selectivity_for_budget(0.25) == pytest.approx(3.0)
    sb = SelectiveBackprop(128, budget=0.3, history=1024)
    g = torch.Generator().manual_seed(0)
    kept = [torch.rand(128, generator=g) < sb.keep_probability(torch.rand(128, generator=g))
            for _ in range(200)]
    assert torch.cat(kept).float().mean().item() == pytest.approx(0.3, abs=0.02)
    with pytest.raises(ConfigError, match="^budget"):
        selectivity_for_budget(0.0)


def test_select_pools_kept_examples_into_full_batches(tiny_data):
    model = small_model()
    sb = SelectiveBackprop(16, budget=0.3, seed=0)
    x, y = tiny_data.train.x, tiny_data.train.y
    got, calls = [], 0
    for start in range(0, 160, 16):
        idx = torch.arange(start, start + 16)
        out = sb.select(model, idx, x[idx], y[idx])
        calls += 1
        if out is not None:
            got.append(out)
    assert got and all(len(o[0]) == 16 for o in got)
    for i, xi, yi in got:
        assert torch.equal(xi, x[i]) and torch.equal(yi, y[i])
    assert sb.forward_examples == 160 and sb.backprop_examples == 16 * len(got)
    assert sb.cost(n=160, epochs=1)["extra_forward"] == pytest.approx(1 / 3)
    assert sb.cost(n=160, epochs=1)["paper_estimate"] == pytest.approx(0.3 + 1 / 3)


def test_scoring_is_one_batched_no_grad_forward(tiny_data):
    model = small_model()
    calls = []
    model.register_forward_hook(lambda m, inp, out: calls.append((inp[0].shape[0],
                                                                  torch.is_grad_enabled(),
                                                                  m.training)))
    sb = SelectiveBackprop(64, budget=0.5)
    idx = torch.arange(32)
    sb.select(model, idx, tiny_data.train.x[idx], tiny_data.train.y[idx])
    assert calls == [(32, False, False)]
    assert model.training and all(p.grad is None for p in model.parameters())


def test_scoring_uses_the_mixed_inputs_credited_by_share(tiny_data):
    aug, mixer = build_augment("ricap", tiny_data)
    model = small_model()
    sb = SelectiveBackprop(64, budget=0.5, augment=aug, mixer=mixer, seed=3)
    idx = torch.arange(32)
    x, y = tiny_data.train.x[idx], tiny_data.train.y[idx]
    state = sb.generator(x.device).get_state()
    losses = sb.score(model, x, y)
    g = torch.Generator().set_state(state)
    m = mixer(aug(x, g), y, g)
    model.eval()
    ce = -model(m.x).log_softmax(1).gather(1, m.labels).detach()
    per_mixed = (ce * m.shares).sum(1)
    weighted = (m.shares * per_mixed[:, None]).flatten()
    num = torch.zeros(32).index_add_(0, m.sources.flatten(), weighted)
    den = torch.zeros(32).index_add_(0, m.sources.flatten(), m.shares.flatten())
    assert torch.allclose(losses, num / den, atol=1e-5)
    plain = SelectiveBackprop(64, budget=0.5).score(model, x, y)
    assert not torch.allclose(losses, plain)


def test_sb_state_dict_resumes_selection(tiny_data):
    model = small_model()
    x, y = tiny_data.train.x, tiny_data.train.y
    a = SelectiveBackprop(16, budget=0.5, seed=1)
    for s in range(0, 48, 16):
        idx = torch.arange(s, s + 16)
        a.select(model, idx, x[idx], y[idx])
    b = SelectiveBackprop(16, budget=0.5, seed=1)
    b.load_state_dict(a.state_dict())
    for s in range(48, 160, 16):
        idx = torch.arange(s, s + 16)
        oa, ob = a.select(model, idx, x[idx], y[idx]), b.select(model, idx, x[idx], y[idx])
        assert (oa is None) == (ob is None)
        if oa is not None:
            assert torch.equal(oa[0], ob[0])


def test_sb_trains_through_the_trainer_hook(tiny_data):
    sb = SelectiveBackprop(32, budget=0.5, seed=0)
    t = Trainer(small_model(), tiny_data, TrainConfig(batch_size=32), 100, selector=sb)
    results = [t.train_batch(torch.arange(s, s + 32)) for s in range(0, 256, 32)]
    assert any(r is None for r in results) and any(r is not None for r in results)
    assert t.step == sum(r is not None for r in results) == sb.backprop_examples // 32


def test_sb_ends_the_lr_schedule_with_the_training(tiny_data):
    """The budget-aware schedule follows the batches SB forwards, not the fewer it steps
    on: the last LR is the schedule's end (it stopped at 0.0135 of 0.05 at B = 0.3), and
    each epoch starts where a training without selection does."""
    cfg = TrainConfig(epochs=6, batch_size=32, lr=0.05, budget=0.3, lr_schedule="linear")
    method = build_method("sb", tiny_data, cfg)
    trainer = Trainer(small_model(), tiny_data, cfg, method.epochs * method.steps_per_epoch,
                      selector=method.selector)
    starts = [trainer.train_epoch(method.sampler, epoch)["lr"] for epoch in range(6)]
    assert trainer.step < trainer.batches == 6 * method.steps_per_epoch  # fewer steps
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(cfg.final_lr)
    plain = train(small_model(), tiny_data, ShuffleSampler(len(tiny_data.train), seed=0), cfg,
                  progress=False)
    assert starts == pytest.approx([r["lr"] for r in plain.history])


def test_osgd_backprops_top_q_losses():
    o = OrderedSGD(8)
    losses = torch.tensor([0.1, 5.0, 0.3, 4.0, 0.2, 3.0, 0.0, 2.0])
    assert torch.equal(o.loss_weights(losses), torch.ones(8))
    o.q = 2
    assert torch.equal(o.loss_weights(losses).nonzero().flatten(), torch.tensor([1, 3]))


def _acc_report(epoch, acc, n=100):
    correct = torch.arange(n) < round(acc * n)
    return BatchReport(epoch, 0, torch.arange(n), torch.zeros(n), torch.ones(n), correct)


def test_osgd_q_schedule_follows_training_accuracy():
    o = OrderedSGD(64)
    qs = []
    for epoch, acc in enumerate([0.5, 0.85, 0.92, 0.7, 0.96, 0.99, 0.996, 0.2]):
        o.on_batch(_acc_report(epoch, acc))
        qs.append(o.q)
    o.update_q()
    # q is set from the previous epoch's accuracy and never grows back
    assert qs == [64, 64, 32, 16, 16, 8, 8, 4]
    assert o.q == 4
    p = OrderedSGD(64)
    p.load_state_dict(o.state_dict())
    assert p.q == 4


def test_osgd_shrinks_q_as_the_trainer_reports_accuracy(tiny_data):
    from sampletune.budget import build_method
    from sampletune.models import build_model

    cfg = TrainConfig(epochs=10, batch_size=32, lr=0.1, budget=1.0)
    method = build_method("osgd", tiny_data, cfg)
    model = seeded_model(lambda: build_model("mlp", tiny_data.input_shape, 3), 0)
    method.train(model, tiny_data, cfg, progress=False)
    # tiny_data has 30% label noise, so training accuracy reaches ~70-80% at most
    assert method.selector.q in (32, 16)
    clean = tiny_data.__class__(**{**tiny_data.__dict__, "train": tiny_data.train.__class__(
        tiny_data.train.x, tiny_data.train.clean_y, tiny_data.train.clean_y,
        tiny_data.train.noisy & False)})
    method = build_method("osgd", clean, cfg)
    method.train(seeded_model(lambda: build_model("mlp", clean.input_shape, 3), 0), clean, cfg,
                 progress=False)
    assert method.selector.q <= 4


def test_osgd_uses_the_new_q_from_the_first_step_of_an_epoch(tiny_data):
    """q shrinks before the first step of the epoch after accuracy passed a threshold."""
    o = OrderedSGD(64)
    o.correct, o.seen = 90, 100  # epoch 0 ended at 90% training accuracy
    o.set_epoch(1)
    assert o.q == 16
    assert int(o.loss_weights(torch.rand(64)).sum()) == 16


def test_sb_rule_as_plain_functions_for_your_own_loop():
    sb = SelectiveBackprop(4, beta=2.0, history=8)
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert torch.equal(sb_keep_probability(losses, losses, 2.0), sb.keep_probability(losses))
    masks = [sb_select(losses, 1.0, torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(*masks) and masks[0].dtype == torch.bool and bool(masks[0][3])
    ref = torch.arange(100.0)  # F over a longer history: a loss of 50 has cdf 0.51
    assert sb_keep_probability(torch.tensor([50.0]), ref, 1.0).item() == pytest.approx(0.51)
    g = torch.Generator().manual_seed(0)
    kept = sb_select(torch.rand(4000, generator=g), selectivity_for_budget(0.25), g)
    assert kept.float().mean().item() == pytest.approx(0.25, abs=0.03)
    with pytest.raises(ConfigError, match="^reference: "):
        sb_keep_probability(losses, torch.zeros(0), 1.0)
    with pytest.raises(ConfigError, match="^sb_beta: "):
        sb_select(losses, -1.0, g)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_sb_select_refuses_non_finite_losses_and_references(bad):
    g = torch.Generator().manual_seed(0)
    losses = torch.tensor([1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match="^losses: 1 NaN or infinite"):
        sb_select(torch.tensor([1.0, bad, 3.0]), 1.0, g)
    with pytest.raises(ConfigError, match="^reference: 1 NaN or infinite"):
        sb_select(losses, 1.0, g, reference=torch.tensor([0.5, bad]))


@pytest.mark.parametrize("kw,field", [
    ({"batch_size": 2.5}, "batch_size"), ({"batch_size": 8, "history": "9"}, "sb_history"),
    ({"batch_size": 8, "seed": 1.7}, "seed"), ({"batch_size": 8, "beta": float("nan")}, "sb_beta"),
    ({"batch_size": 8, "beta": True}, "sb_beta"),
])
def test_selective_backprop_settings_are_checked_not_cast(kw, field):
    """int(2.5), int("9"), int(1.7) and float(True) used to pass as 2, 9, 1 and 1.0."""
    with pytest.raises(ConfigError, match=f"^{field}: "):
        SelectiveBackprop(**kw)



@pytest.mark.parametrize("call, match", [
    (lambda g: sb_select(torch.rand(4, 1), 1.0, g), r"^losses: .*\(4, 1\)"),
    (lambda g: sb_select(torch.rand(4), 1.0, g, reference=torch.rand(2, 3)), "^reference: "),
    (lambda g: sb_select(torch.rand(4), True, g), "^sb_beta: True is not a number"),
    (lambda g: sb_keep_probability(torch.rand(4, 2), torch.rand(4), 1.0), "^losses: "),
    (lambda g: sb_keep_probability(torch.tensor([math.nan, 0.1]), torch.rand(4), 1.0),
     "^losses: 1 NaN or infinite"),
    (lambda g: sb_keep_probability(torch.rand(2), torch.rand(4), True), "^sb_beta: True"),
    (lambda g: sb_keep_probability(torch.rand(2), torch.rand(4), math.nan), "^sb_beta: nan"),
])
def test_sb_functions_refuse_non_1d_non_finite_and_bool_beta(call, match):
    with pytest.raises(ConfigError, match=match):
        call(torch.Generator().manual_seed(0))
