"""Noisy-label baselines (issue 8): exact values of each functional core, the trainer hook,
determinism, and every method end to end."""

import math
import sys

import pytest
import torch
import torch.nn.functional as F
from helpers import KillAfter, Stop, checkpoint_epoch
from torch import nn

from sampletune.augment import build_augment
from sampletune.errors import ConfigError
from sampletune.noisy import (
    L2RW,
    NOISY_NAMES,
    SelfPaced,
    batch_percentile,
    bootstrap_loss,
    bootstrap_target,
    build_noisy,
    estimate_noise_rate,
    forget_rate,
    kfold_indices,
    l2rw_weights,
    self_paced_weights,
    small_loss_mask,
)
from sampletune.samplers import ShuffleSampler
from sampletune.train import TrainConfig, seeded_model, train

CFG = TrainConfig(epochs=6, batch_size=32, lr=0.05, lr_schedule="cosine", seed=0)


def small_model(seed=0):
    return seeded_model(lambda: nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(),
                                              nn.Linear(32, 3)), seed)


def params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


# ---- the trainer's loss_fn hook ---------------------------------------------------------
def test_loss_fn_hook_with_cross_entropy_matches_the_plain_loop(tiny_data):
    n = len(tiny_data.train)
    plain = train(small_model(), tiny_data, ShuffleSampler(n, seed=0), CFG, progress=False)
    hooked = train(small_model(), tiny_data, ShuffleSampler(n, seed=0), CFG, progress=False,
                   loss_fn=lambda logits, y: F.cross_entropy(logits, y, reduction="none"))
    assert torch.equal(params(plain.model), params(hooked.model))


def test_loss_fn_hook_refuses_a_mixer(tiny_data):
    _, mixer = build_augment("mixup", tiny_data)
    with pytest.raises(ConfigError, match="^loss_fn: "):
        train(small_model(), tiny_data, ShuffleSampler(len(tiny_data.train)), CFG,
              mixer=mixer, loss_fn=lambda logits, y: logits.sum(1), progress=False)


# ---- small loss -------------------------------------------------------------------------
def test_forget_rate_ramps_to_the_noise_rate():
    assert [forget_rate(t, 0.4, 10) for t in (0, 5, 10, 30)] == pytest.approx([0, 0.2, 0.4, 0.4])


def test_small_loss_mask_keeps_the_floor_of_the_smallest():
    losses = torch.tensor([0.5, 0.1, 0.9, 0.3, 0.7])
    assert small_loss_mask(losses, 0.4).tolist() == [True, True, False, True, False]  # 3 of 5
    assert small_loss_mask(losses, 0.5).tolist() == [False, True, False, True, False]  # 2.5 -> 2
    assert small_loss_mask(losses, 0.0).all()
    assert small_loss_mask(losses, 0.99).tolist() == [False, True, False, False, False]  # >= 1
    ties = torch.tensor([0.2, 0.2, 0.2, 0.2])
    assert small_loss_mask(ties, 0.5).tolist() == [True, True, False, False]  # stable
    b = 64
    assert int(small_loss_mask(torch.rand(b), 0.3).sum()) == math.floor(0.7 * b)


def test_noise_rate_estimate_finds_the_high_loss_share():
    g = torch.Generator().manual_seed(0)
    clean = 0.2 + 0.05 * torch.randn(700, generator=g)
    noisy = 2.0 + 0.3 * torch.randn(300, generator=g)
    assert estimate_noise_rate(torch.cat([clean, noisy])) == pytest.approx(0.3, abs=0.01)
    assert estimate_noise_rate(torch.ones(10)) == 0.0


def test_the_noise_mixture_counts_the_examples_it_cannot_decide():
    from sampletune.noisy.estimate import NoiseMixture, noise_mixture

    g = torch.Generator().manual_seed(0)
    clean = 0.2 + 0.05 * torch.randn(700, generator=g)
    apart = noise_mixture(torch.cat([clean, 2.0 + 0.3 * torch.randn(300, generator=g)]))
    assert apart.rate == pytest.approx(0.3, abs=0.01) and apart.ambiguous < 0.01
    # Overlapping modes: many examples lie where neither component is sure.
    close = noise_mixture(torch.cat([clean, 0.35 + 0.1 * torch.randn(300, generator=g)]))
    assert close.ambiguous > 0.15
    assert noise_mixture(torch.ones(10)) == NoiseMixture(0.0, 0.0)


def test_the_noisy_posterior_is_per_example_and_leaves_non_finite_losses_out():
    from sampletune.noisy.estimate import noise_mixture, noisy_posterior

    g = torch.Generator().manual_seed(0)
    losses = torch.cat([0.2 + 0.05 * torch.randn(70, generator=g),
                        2.0 + 0.3 * torch.randn(30, generator=g)])
    post = noisy_posterior(losses)
    assert post.shape == (100,) and post.dtype == torch.float64
    assert bool((post[:70] < 0.01).all() and (post[70:] > 0.99).all())
    with_nan = noisy_posterior(torch.cat([losses, torch.tensor([float("nan"), float("inf")])]))
    assert torch.equal(with_nan[:100], post) and with_nan[100:].tolist() == [1.0, 1.0]
    assert noise_mixture(torch.cat([losses, torch.tensor([float("nan")])])) == \
        noise_mixture(losses)
    assert torch.equal(noisy_posterior(torch.ones(5)), torch.zeros(5, dtype=torch.float64))


def test_small_loss_known_backpropagates_fewer_noisy_examples(tiny_data):
    cfg = CFG.replace(epochs=8)
    uniform = build_noisy("uniform", tiny_data, cfg)
    method = build_noisy("small-loss-known", tiny_data, cfg, noise_rate=0.3, ramp_epochs=2)
    assert uniform.selector is None
    f = method.train(small_model(), tiny_data, cfg, progress=False).final
    assert f["seen_noisy_share"] == pytest.approx(float(tiny_data.train.noisy.float().mean()))
    assert f["kept_noisy_share"] < 0.6 * f["seen_noisy_share"]  # uniform keeps all: equal
    assert f["kept_fraction"] < 1 and f["noise_rate_used"] == 0.3


def test_small_loss_estimates_its_rate_after_the_warm_up(tiny_data):
    cfg = CFG.replace(epochs=6)
    method = build_noisy("small-loss", tiny_data, cfg, ramp_epochs=4)
    f = method.train(small_model(), tiny_data, cfg, progress=False).final
    assert method.selector.estimate_epoch == 2
    assert 0.1 < f["noise_rate_used"] < 0.5  # tiny_data has 30% noise


# ---- bootstrapping ----------------------------------------------------------------------
def test_reed_targets_equal_hand_computed_ones():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]]))
    y = torch.tensor([1])
    soft = bootstrap_target(logits, y, 0.95, "soft")
    assert soft.tolist()[0] == pytest.approx([0.05 * 0.7, 0.95 + 0.05 * 0.2, 0.05 * 0.1])
    hard = bootstrap_target(logits, y, 0.8, "hard")
    assert hard.tolist()[0] == pytest.approx([0.2, 0.8, 0.0])
    loss = bootstrap_loss(logits, y, mode="hard")  # default beta 0.8
    assert float(loss) == pytest.approx(-(0.2 * math.log(0.7) + 0.8 * math.log(0.2)))
    loss = bootstrap_loss(logits, y, mode="soft")  # default beta 0.95
    expected = -(0.035 * math.log(0.7) + 0.96 * math.log(0.2) + 0.005 * math.log(0.1))
    assert float(loss) == pytest.approx(expected)


def test_reed_soft_gradient_detached_or_through_the_prediction():
    logits = torch.tensor([[1.0, -0.5, 0.3], [0.2, 0.1, 2.0]], requires_grad=True)
    y = torch.tensor([0, 1])
    (g,) = torch.autograd.grad(bootstrap_loss(logits, y, 0.9, "soft").sum(), logits)
    target = bootstrap_target(logits, y, 0.9, "soft")  # a constant target: softmax - t
    assert torch.allclose(g, F.softmax(logits, 1).detach() - target, atol=1e-6)
    # detach=False: beta * CE + (1 - beta) * entropy (the paper's min-entropy reading)
    undetached = bootstrap_loss(logits, y, 0.9, "soft", detach=False)
    p = F.softmax(logits, 1)
    entropy = -(p * F.log_softmax(logits, 1)).sum(1)
    expected = 0.9 * F.cross_entropy(logits, y, reduction="none") + 0.1 * entropy
    (g1,) = torch.autograd.grad(undetached.sum(), logits)
    (g2,) = torch.autograd.grad(expected.sum(), logits)
    assert torch.allclose(g1, g2, atol=1e-6) and not torch.allclose(g1, g, atol=1e-3)


# ---- self-paced -------------------------------------------------------------------------
def test_self_paced_mask_and_moving_threshold():
    losses = torch.tensor([0.5, 0.1, 0.9, 0.3])
    assert self_paced_weights(losses, 0.4).tolist() == [0, 1, 0, 1]
    assert self_paced_weights(losses, 0.05).tolist() == [0, 1, 0, 0]  # never empty
    assert float(batch_percentile(losses, 0.5)) == pytest.approx(0.5)  # rank 1.5 -> 2
    sp = SelfPaced(4, noise_rate=0.5, burn_in=1, decay=0.9)
    sp.set_epoch(0)
    assert sp.loss_weights(losses) is None  # burn-in: uniform, threshold tracked
    assert float(sp.threshold) == pytest.approx(0.5)
    sp.set_epoch(1)
    w = sp.loss_weights(torch.tensor([1.0, 2.0, 3.0, 0.2]))
    assert float(sp.threshold) == pytest.approx(0.9 * 0.5 + 0.1 * 2.0)  # 0.65
    assert w.tolist() == [0, 0, 0, 1]


# ---- L2RW -------------------------------------------------------------------------------
def test_l2rw_weights_match_the_hand_derived_gradient_on_a_linear_model():
    g = torch.Generator().manual_seed(0)
    model = seeded_model(lambda: nn.Linear(4, 3), 0).double()
    x, y = torch.randn(6, 4, generator=g).double(), torch.tensor([0, 1, 2, 0, 1, 2])
    xm, ym = torch.randn(5, 4, generator=g).double(), torch.tensor([0, 1, 2, 2, 1])
    w = l2rw_weights(model, x, y, xm, ym)
    # -d/d eps_i L_meta(theta - alpha * eps_i * grad f_i) at 0 = alpha <grad L_meta, grad f_i>
    ps = list(model.parameters())

    def flat_grad(loss):
        return torch.cat([t.flatten() for t in torch.autograd.grad(loss, ps)])

    meta_g = flat_grad(F.cross_entropy(model(xm), ym))
    raw = torch.stack([meta_g @ flat_grad(F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]))
                       for i in range(6)]).clamp_min(0)
    assert (raw > 0).any() and (raw == 0).any()
    assert torch.allclose(w, raw / raw.sum(), atol=1e-10)
    # and a central finite difference of the meta loss along each example's virtual step
    h, fd = 1e-5, []
    with torch.no_grad():
        base = [p.clone() for p in ps]
    for i in range(6):
        gi = torch.autograd.grad(F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]), ps)
        vals = []
        for sign in (1, -1):
            with torch.no_grad():
                for p, b, gg in zip(ps, base, gi, strict=True):
                    p.copy_(b - sign * h * gg)
                vals.append(float(F.cross_entropy(model(xm), ym)))
        with torch.no_grad():
            for p, b in zip(ps, base, strict=True):
                p.copy_(b)
        fd.append(max(-(vals[0] - vals[1]) / (2 * h), 0.0))
    fd = torch.tensor(fd, dtype=torch.float64)
    assert torch.allclose(w, fd / fd.sum(), atol=1e-6)


def test_l2rw_skips_the_step_when_every_weight_is_zero(tiny_data, monkeypatch):
    import sampletune.noisy.l2rw as mod

    sel = L2RW(tiny_data.val, 8, seed=0)
    x, y = tiny_data.train.x[:4], tiny_data.train.y[:4]
    monkeypatch.setattr(mod, "l2rw_weights", lambda *a, **k: torch.zeros(4))
    assert sel.select(small_model(), torch.arange(4), x, y) is None
    assert sel.skipped == 1 and sel.steps == 1


# ---- cleanlab -----------------------------------------------------------------------------
def separable_data(noise=0.1):
    from sampletune.data import RawDataset, make_splits

    g = torch.Generator().manual_seed(1)
    centers = torch.randn(3, 1, 4, 4, generator=g) * 4
    y = torch.arange(300) % 3
    x = centers[y] + 0.5 * torch.randn(300, 1, 4, 4, generator=g)
    raw = RawDataset("sep", x, y, x[:30], y[:30], num_classes=3, kind="image", hflip=False)
    return make_splits(raw, seed=0, noise=noise)


def test_kfold_folds_are_deterministic_stratified_and_a_partition(tiny_data):
    y = tiny_data.train.y
    a, b, c = kfold_indices(y, 4, 0), kfold_indices(y, 4, 0), kfold_indices(y, 4, 1)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not all(torch.equal(u, v) for u, v in zip(a, c, strict=True))
    assert torch.equal(torch.sort(torch.cat(a)).values, torch.arange(len(y)))
    with pytest.raises(ConfigError, match="^cv_folds: "):
        kfold_indices(y, 1, 0)


def test_cleanlab_removes_planted_label_flips():
    pytest.importorskip("cleanlab")
    data = separable_data()
    cfg = TrainConfig(epochs=5, batch_size=32, lr=0.05, lr_schedule="cosine", seed=0)
    method = build_noisy("cleanlab", data, cfg, cv_folds=3, model_fn=small_model)
    f = method.info
    assert f["cleanlab_removed_recall"] >= 0.9 and f["cleanlab_removed_precision"] >= 0.8
    assert method.cost == pytest.approx(3.0)
    assert len(method.sampler) == len(data.train) - f["cleanlab_removed"]
    again = build_noisy("cleanlab", data, cfg, cv_folds=3, model_fn=small_model)
    assert again.info == f


def test_cleanlab_missing_is_one_config_error(tiny_data, monkeypatch):
    monkeypatch.setitem(sys.modules, "cleanlab", None)
    monkeypatch.setitem(sys.modules, "cleanlab.filter", None)
    with pytest.raises(ConfigError, match=r"^noisy: .*pip install 'sampletune\[cleanlab\]'"):
        build_noisy("cleanlab", tiny_data, CFG, model_fn=small_model)


# ---- the factory ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", NOISY_NAMES)
def test_every_method_trains_end_to_end(tiny_data, name):
    if name == "cleanlab":
        pytest.importorskip("cleanlab")
    cfg = CFG.replace(epochs=3)
    rate = 0.3 if name in ("small-loss-known", "self-paced") else None
    method = build_noisy(name, tiny_data, cfg, model_fn=small_model, noise_rate=rate,
                         ramp_epochs=1, cv_folds=2, cv_epochs=1)
    result = method.train(small_model(), tiny_data, cfg, progress=False)
    f = result.final
    assert f["noisy"] == name and f["cost_trainings"] == method.cost
    assert 0 <= f["test_acc"] <= 1 and f["epochs"] == 3 and "best_epoch" in f
    if name == "early-stopping":
        assert f["test_acc"] == f["best_test_acc"] and "last_test_acc" in f
    if name == "l2rw":
        assert method.cost == 3.0 and f["l2rw_steps"] == 3 * math.ceil(270 / 32)


@pytest.mark.parametrize("name", ["small-loss", "self-paced", "reed-soft", "l2rw"])
def test_same_seed_same_weights(tiny_data, name):
    cfg = CFG.replace(epochs=3)

    def run():
        method = build_noisy(name, tiny_data, cfg, ramp_epochs=1)
        return params(method.train(small_model(), tiny_data, cfg, progress=False).model)

    assert torch.equal(run(), run())


@pytest.mark.parametrize("name,rate,field", [
    ("focal", None, "noisy"), ("small-loss-known", None, "noise_rate"),
    ("small-loss-known", 1.5, "noise_rate"), ("reed-soft", 0.2, "noise_rate"),
])
def test_bad_names_and_rates_are_one_line_errors(tiny_data, name, rate, field):
    with pytest.raises(ConfigError, match=f"^{field}: ") as err:
        build_noisy(name, tiny_data, CFG, noise_rate=rate)
    assert "\n" not in str(err.value)


# ---- the command line -----------------------------------------------------------------------
CLI = ["--threads", "1", "train", "--dataset", "digits", "--train-subset", "400",
       "--model", "mlp", "--lr", "0.05", "--epochs", "2", "--quiet"]


def test_cli_trains_a_noisy_baseline_and_prints_early_stopping(tmp_path, capsys):
    import json

    from sampletune.cli import main

    out = tmp_path / "slk"
    assert main([*CLI, "--noisy", "small-loss-known", "--noise-rate", "0.4",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("small-loss-known on digits: ") and "(1 trainings)" in printed
    assert "early stopping: best val acc" in printed and "at epoch" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["noisy"] == "small-loss-known" and summary["noise_rate"] == 0.4
    assert summary["config"]["noisy"] == "small-loss-known"


@pytest.mark.parametrize("extra,message", [
    (["--noisy", "focal"], "noisy: unknown noisy-label method 'focal'"),
    (["--noisy", "small-loss-known"], "noise_rate: 'small-loss-known' needs the noise rate"),
    (["--noisy", "self-paced", "--noise-rate", "1.5"], "noise_rate: 1.5 is outside [0, 1)"),
    (["--noise-rate", "0.2"], "noise_rate: is only used with a noisy-label method"),
    (["--noisy", "l2rw", "--method", "sb"], "noisy: 'l2rw' and method 'sb' cannot be combined"),
    (["--noisy", "l2rw", "--budget", "0.5"], "budget: the noisy-label methods train full"),
])
def test_cli_bad_noisy_input_is_one_line(capsys, extra, message):
    from sampletune.cli import main

    assert main([*CLI, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sampletune: error: {message}") and err.count("\n") == 1




@pytest.mark.parametrize("name", ["small-loss", "self-paced", "l2rw"])
def test_a_killed_run_resumes_to_the_same_weights(tiny_data, tmp_path, name):
    cfg = CFG.replace(epochs=5, checkpoint_every=0)

    def method():
        return build_noisy(name, tiny_data, cfg, ramp_epochs=2)

    full = method().train(small_model(), tiny_data, cfg, progress=False)
    killed = method()
    killed.observers = [*killed.observers, KillAfter(31)]  # mid-way through epoch 3
    with pytest.raises(Stop):
        killed.train(small_model(), tiny_data, cfg, run_dir=tmp_path, progress=False)
    assert checkpoint_epoch(tmp_path) == 2
    resumed = method().train(small_model(), tiny_data, cfg, run_dir=tmp_path, progress=False)
    assert torch.equal(params(full.model), params(resumed.model))
    keys = ("noise_rate_used", "kept_noisy_share", "l2rw_steps")
    assert {k: full.final.get(k) for k in keys} == {k: resumed.final.get(k) for k in keys}
