import math

import pytest
import torch

from sampletune.errors import ConfigError
from sampletune.swift.diagnostics import (
    auroc,
    effective_sample_size,
    least_drawn_class,
    noisy_mass,
    reference_spread,
    sampler_diagnostics,
)
from sampletune.swift.family import SwiftFamily
from sampletune.swift.params import from_cube, to_cube
from sampletune.swift.reference import (
    MIN_ESTIMATED_SHARE,
    drop_top_loss_params,
    estimated_cut,
    reference_params,
)


def _features(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    loss = torch.rand(n, generator=g, dtype=torch.float64) * 3
    loss[:10] = loss[10]  # ties
    return {"loss": loss, "renormed_entropy": torch.rand(n, generator=g, dtype=torch.float64),
            "grad_norm": torch.rand(n, generator=g, dtype=torch.float64) + 0.1}


@pytest.mark.parametrize("transform", ["cdf", "cgf"])
@pytest.mark.parametrize("q", [0.1, 0.3, 0.5])
def test_drop_top_q_keeps_exactly_the_lowest_losses(transform, q):
    f = _features()
    family = SwiftFamily(f, transform=transform)
    probs = family.probabilities(drop_top_loss_params(family, q, segments=4))
    kept = probs > 0
    cut = f["loss"].sort().values[math.ceil((1 - q) * 200) - 1]
    assert torch.equal(kept, f["loss"] <= cut)  # ties at the cut are kept
    assert torch.allclose(probs[kept], torch.full_like(probs[kept], 1 / int(kept.sum())))


def test_reference_samplers_are_points_of_the_cube():
    family = SwiftFamily(_features())
    refs = reference_params(family, segments=4)
    assert [name for name, _ in refs][:2] == ["uniform", "drop-top-0.1"]
    for _, params in refs:
        back = from_cube(to_cube(params), 4, 2)
        assert torch.allclose(family.probabilities(back), family.probabilities(params))
    assert torch.allclose(family.probabilities(refs[0][1]), torch.full((200,), 1 / 200,
                                                                       dtype=torch.float64))


def test_reference_needs_the_loss_feature_and_three_segments():
    f = _features()
    with pytest.raises(ConfigError, match="features"):
        drop_top_loss_params(SwiftFamily(f, names=("renormed_entropy",)), 0.2, 4)
    with pytest.raises(ConfigError, match="segments"):
        drop_top_loss_params(SwiftFamily(f), 0.2, 2)
    assert [n for n, _ in reference_params(SwiftFamily(f), 2)] == ["uniform"]


def test_the_cut_is_on_the_loss_feature_the_family_aggregates():
    f = _features()
    f["class_train_loss"] = -f["loss"]  # ranks the other way round
    for names, score in ((("loss", "renormed_entropy"), f["loss"]),
                         (("class_train_loss", "renormed_entropy"), f["class_train_loss"])):
        family = SwiftFamily(f, names=names, transform="cdf")
        kept = family.probabilities(drop_top_loss_params(family, 0.3, 4)) > 0
        assert torch.equal(kept, score <= score.sort().values[139]), names


def test_auroc_matches_pairwise_counting_with_ties():
    g = torch.Generator().manual_seed(1)
    s = torch.randint(0, 4, (60,), generator=g).double()
    pos = torch.rand(60, generator=g) < 0.3
    a, b = s[pos], s[~pos]
    brute = ((a[:, None] > b[None]).double() + 0.5 * (a[:, None] == b[None]).double()).mean()
    assert auroc(s, pos) == pytest.approx(float(brute))
    assert auroc(s, torch.zeros(60, dtype=torch.bool)) is None


def test_mass_and_effective_sample_size():
    p = torch.tensor([0.5, 0.5, 0.0, 0.0], dtype=torch.float64)
    assert effective_sample_size(p) == pytest.approx(0.5)
    assert effective_sample_size(torch.ones(7)) == pytest.approx(1.0)
    assert noisy_mass(p, torch.tensor([True, False, True, True])) == pytest.approx(0.5)


def test_reference_spread_is_flat_under_two_standard_errors_of_a_validation_accuracy():
    # mean 0.62 on 100 examples: two standard errors 2 sqrt(0.62 * 0.38 / 100) = 0.0971
    flat = reference_spread([0.60, 0.62, 0.64], 100)
    assert flat["spread"] == pytest.approx(0.04)
    assert flat["two_se"] == pytest.approx(2 * math.sqrt(0.62 * 0.38 / 100))
    assert flat["flat"]
    # the same scores on 2,000 examples are told apart (two standard errors 0.0217)
    assert not reference_spread([0.60, 0.62, 0.64], 2000)["flat"]
    with pytest.raises(ConfigError, match="^scores: "):
        reference_spread([0.6], 100)
    with pytest.raises(ConfigError, match="^n_val: "):
        reference_spread([0.6, 0.7], 0)


def test_the_least_drawn_class_is_the_one_a_sampler_starves():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
    assert least_drawn_class(torch.ones(8), labels) == (0, pytest.approx(1.0))
    # class 1 keeps one of its two examples: half its uniform share; class 0 gains
    probs = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    assert least_drawn_class(probs, labels) == (1, pytest.approx((1 / 7) / (2 / 8)))
    assert least_drawn_class(torch.tensor([1.0, 1, 1, 1, 0, 0, 1, 1]), labels)[1] == 0.0
    assert least_drawn_class(torch.ones(3), torch.tensor([0, 2, 2]))[0] == 0  # 1 is absent
    d = sampler_diagnostics(probs, None, labels)
    assert d["least_drawn_class"] == 1 and "noisy_mass" not in d
    assert "least_drawn_class" not in sampler_diagnostics(probs, None)


def test_guard_keeps_the_challenger_unless_validation_prefers_the_incumbent():
    from torch import nn

    from sampletune.data.dataset import Split
    from sampletune.swift.guard import clearly_better, paired_comparison

    class Fixed(nn.Module):  # predicts the stored class of each input (x holds the index)
        def __init__(self, preds):
            super().__init__()
            self.preds = preds

        def forward(self, x):
            return nn.functional.one_hot(self.preds[x.long().flatten()], 2).float()

    y = torch.zeros(20, dtype=torch.long)
    val = Split(torch.arange(20).float()[:, None], y, y.clone(), torch.zeros(20, dtype=bool))
    base = torch.tensor([0] * 10 + [1] * 10)  # right on the first 10
    better = torch.tensor([0] * 14 + [1] * 6)  # right on 4 more: 4 wins, 0 losses
    other = torch.tensor([1] * 2 + [0] * 12 + [1] * 6)  # 4 wins, 2 losses
    worse = torch.tensor([1] * 3 + [0] * 8 + [1] * 9)  # 1 win, 3 losses
    assert paired_comparison(Fixed(better), Fixed(base), val) == {"wins": 4, "losses": 0,
                                                                  "keep": True}
    assert paired_comparison(Fixed(other), Fixed(base), val)["keep"]
    assert not paired_comparison(Fixed(worse), Fixed(base), val)["keep"]
    assert paired_comparison(Fixed(base), Fixed(base), val)["keep"]  # ties: the challenger
    # Early stopping against the last epoch must win by more than sqrt(wins + losses).
    assert clearly_better(Fixed(better), Fixed(base), val)["keep"]  # 4 > sqrt(4)
    assert not clearly_better(Fixed(other), Fixed(base), val)["keep"]  # 2 < sqrt(6)
    assert not clearly_better(Fixed(base), Fixed(base), val)["keep"]  # ties: the incumbent
    # At two standard errors (early stopping) 4 wins, 0 losses is not enough: 4 = 2 sqrt(4).
    assert not clearly_better(Fixed(better), Fixed(base), val, z=2.0)["keep"]
    assert clearly_better(Fixed(better), Fixed(base), val, z=1.9)["keep"]


def test_a_search_pick_must_clearly_beat_uniform():
    from sampletune.swift.guard import clearly_beats

    assert not clearly_beats(0.993, 0.986, 144)  # one example: within one standard error
    assert clearly_beats(0.93, 0.69, 144)
    assert not clearly_beats(1.0, 1.0, 50) and not clearly_beats(0.5, 0.6, 100)


def test_the_simplest_sampler_not_clearly_beaten_is_retrained():
    from sampletune.swift.guard import simplest_clear_winner

    def trial(i, origin, score):
        return {"trial": i, "origin": origin, "score": score, "params": {}}

    # n_val = 400: one standard error of an accuracy near 0.7 is about 0.023.
    uni, ref_a, ref_b = trial(0, "uniform", 0.65), trial(1, "drop-top-0.3", 0.70), \
        trial(2, "drop-top-0.4", 0.72)
    close, far = trial(3, "agent", 0.74), trial(4, "agent", 0.76)
    failed = trial(5, "agent", None)
    trials = [uni, ref_a, ref_b, close, far, failed]
    assert simplest_clear_winner(trials, close, 400) is ref_b  # the agent only ties it
    assert simplest_clear_winner(trials, far, 400) is far  # ... this one clearly beats it
    assert simplest_clear_winner(trials, ref_a, 400) is ref_b  # the best reference
    flat = [uni, trial(1, "drop-top-0.3", 0.66), trial(2, "agent", 0.67)]
    assert simplest_clear_winner(flat, flat[2], 400) is uni  # nothing clearly beats uniform
    # an agent trial may beat uniform clearly even where no reference does
    assert simplest_clear_winner(flat[:2] + [far], far, 400) is far
    assert simplest_clear_winner([close, far], close, 400) is close  # no uniform trial


def test_small_validation_splits_are_warned_about():
    from sampletune.experiments.swift_pipeline import MIN_RELIABLE_VAL, validation_warnings

    assert validation_warnings(MIN_RELIABLE_VAL) == []
    (warning,) = validation_warnings(46)
    assert warning.startswith("the validation split has 46 examples") and "--val-fraction" in \
        warning


def test_the_estimated_cut_drops_the_high_loss_mode():
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(700, generator=g, dtype=torch.float64) * 0.3
    noisy = 2.0 + torch.rand(300, generator=g, dtype=torch.float64)
    f = _features(1000)
    f["loss"] = torch.cat([clean, noisy])
    family = SwiftFamily(f)
    q, cut = estimated_cut(family, segments=4)
    assert q == pytest.approx(0.3)
    kept = family.probabilities(cut) > 0
    assert kept[:700].all() and not kept[700:].any()
    # One mode (no noisy share worth a cut), or no loss feature: nothing to retrain.
    f["loss"] = clean.repeat(2)[:1000]
    q, cut = estimated_cut(SwiftFamily(f), segments=4)
    assert (q < MIN_ESTIMATED_SHARE) == (cut is None)
    assert estimated_cut(SwiftFamily(f, names=("renormed_entropy",)), segments=4) == (0.0, None)
    assert estimated_cut(SwiftFamily(f), segments=2) == (0.0, None)


def test_the_rescored_cut_drops_the_top_q_of_the_new_losses_and_counts_the_moved_examples():
    from sampletune.swift.reference import rescored_cut

    g = torch.Generator().manual_seed(0)
    f = _features(1000)
    f["loss"] = torch.rand(1000, generator=g, dtype=torch.float64)
    family = SwiftFamily(f)
    # The same losses: the cut moves nothing.
    params, swapped = rescored_cut(family, SwiftFamily(f, names=("loss",)), 0.3, 4)
    assert swapped == 0.0
    # New losses that move 50 of the dropped examples into the kept 70% and 50 kept ones out.
    new = dict(f, loss=f["loss"].clone())
    order = f["loss"].argsort()
    top, low = order[-50:], order[:50]
    new["loss"][top], new["loss"][low] = f["loss"][low], f["loss"][top]
    rescored = SwiftFamily(new, names=("loss",))
    params, swapped = rescored_cut(family, rescored, 0.3, 4)
    assert swapped == pytest.approx(100 / 1000)
    kept = rescored.probabilities(params) > 0
    assert int(kept.sum()) == 700 and not kept[low].any() and kept[top].all()
    with pytest.raises(ConfigError, match="999 re-scored examples for 1000"):
        rescored_cut(family, SwiftFamily({k: v[:999] for k, v in new.items()}, names=("loss",)),
                     0.3, 4)
