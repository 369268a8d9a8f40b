import pytest
import torch

from sampletune.errors import ConfigError
from sampletune.swift.family import (
    InvalidSampler,
    SwiftFamily,
    aggregate,
    cgf_transform,
    piecewise_linear,
)
from sampletune.swift.params import SwiftParams, cube_dim, from_cube, to_cube


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _features(n=400, seed=0):
    g = _gen(seed)
    return {"loss": torch.rand(n, generator=g, dtype=torch.float64) * 3,
            "renormed_entropy": torch.rand(n, generator=g, dtype=torch.float64),
            "grad_norm": torch.rand(n, generator=g, dtype=torch.float64) + 0.1}


def test_paper_search_space_has_ten_parameters():
    assert cube_dim(4, 2) == 10


def test_piecewise_linear_hits_end_points_and_interpolates():
    e = torch.tensor([0.0, 0.2, 0.5, 0.5, 1.0], dtype=torch.float64)
    v = torch.tensor([0.0, 1.0, 0.4, 0.9, 0.1], dtype=torch.float64)
    t = torch.tensor([0.0, 0.1, 0.2, 0.35, 0.75, 1.0], dtype=torch.float64)
    out = piecewise_linear(t, e, v)
    assert out.tolist() == pytest.approx([0.0, 0.5, 1.0, 0.7, 0.5, 0.1])
    # At a zero-length segment H takes the right-hand piece (v_3 = 0.9 at t = 0.5).
    assert piecewise_linear(torch.tensor([0.5], dtype=torch.float64), e, v).item() == \
        pytest.approx(0.9)


def test_aggregate_is_linear():
    f = torch.tensor([[0.5, 1.0], [1.0, 0.25]], dtype=torch.float64)
    assert aggregate(f, torch.tensor([1.0, -0.5])).tolist() == [0.0, 0.875]


def test_cgf_is_cumulative_gradient_mass_eq10():
    g = torch.tensor([0.3, 0.1, 0.3, 0.9, 0.5], dtype=torch.float64)
    grad = torch.tensor([1.0, 2.0, 3.0, 4.0, 0.0], dtype=torch.float64)
    out = cgf_transform(g, grad)
    brute = torch.stack([grad[g <= gi].sum() / grad.sum() for gi in g])
    assert torch.allclose(out, brute)
    with pytest.raises(ConfigError, match="all gradient norms are zero"):
        cgf_transform(g, torch.zeros(5, dtype=torch.float64))


def test_cgf_equal_intervals_hold_equal_gradient_mass():
    feats = _features(4000)
    fam = SwiftFamily(feats, ("loss",), "cgf")
    t = fam.t(SwiftParams((0, 1), (1, 1), (1.0,)))
    grad = feats["grad_norm"]
    masses = [float(grad[(t > a) & (t <= a + 0.25)].sum() / grad.sum())
              for a in (0.0, 0.25, 0.5, 0.75)]
    assert masses == pytest.approx([0.25] * 4, abs=0.01)


def test_cdf_transform_spreads_g_uniformly():
    fam = SwiftFamily(_features(1000), transform="cdf")
    t = fam.t(SwiftParams((0, 0.5, 1), (1, 1, 1), (0.7, -0.3)))
    assert float((t <= 0.5).double().mean()) == pytest.approx(0.5, abs=0.002)


def test_probabilities_sum_to_one_and_follow_h():
    feats = _features()
    fam = SwiftFamily(feats, transform="cdf")
    # Keep only the lower half of the loss ranks (c = (1, 0), H a step down at 0.5).
    p = fam.probabilities(SwiftParams((0, 0.5, 0.5, 1), (1, 1, 0, 0), (1.0, 0.0)))
    assert p.sum().item() == pytest.approx(1.0)
    median = feats["loss"].median()
    assert bool((p[feats["loss"] > median] == 0).all())
    assert bool((p[feats["loss"] < median] > 0).all())


def test_all_zero_sampler_is_an_invalid_sampler():
    fam = SwiftFamily(_features())
    with pytest.raises(InvalidSampler, match="zero sampling probability"):
        fam.probabilities(SwiftParams((0, 0.5, 1), (0, 0, 0), (1.0, 1.0)))


def test_family_checks_inputs():
    with pytest.raises(ConfigError, match="transform"):
        SwiftFamily(_features(), transform="pdf")
    with pytest.raises(ConfigError, match="missing"):
        SwiftFamily({"loss": torch.rand(5, generator=_gen())}, ("loss",), "cgf")
    with pytest.raises(ConfigError, match="coefficients"):
        SwiftFamily(_features()).tau(SwiftParams((0, 1), (1, 1), (1.0,)))


def test_params_validate_eq8_eq9():
    with pytest.raises(ConfigError, match="ordered"):
        SwiftParams((0, 0.6, 0.4, 1), (0, 0, 0, 0), (0.0,))
    with pytest.raises(ConfigError, match="start at 0"):
        SwiftParams((0.1, 1), (0, 0), (0.0,))
    with pytest.raises(ConfigError, match=r"outside \[0, 1\]"):
        SwiftParams((0, 1), (0, 1.5), (0.0,))
    with pytest.raises(ConfigError, match=r"outside \[-1, 1\]"):
        SwiftParams((0, 1), (0, 1), (2.0,))


@pytest.mark.parametrize("segments", [1, 2, 4, 7])
def test_cube_bijection_round_trips(segments):
    g = _gen(segments)
    for _ in range(50):
        u = torch.rand(cube_dim(segments, 2), generator=g, dtype=torch.float64)
        p = from_cube(u, segments, 2)
        assert list(p.e) == sorted(p.e) and p.e[0] == 0 and p.e[-1] == 1
        assert torch.allclose(to_cube(p), u, atol=1e-9)
        assert to_cube(from_cube(to_cube(p), segments, 2)).tolist() == \
            pytest.approx(to_cube(p).tolist(), abs=1e-12)


def test_uniform_cube_gives_uniform_ordered_end_points():
    # Uniform order statistics of S-1 points: E[e_k] = k / S; no region is over-weighted.
    g = _gen(3)
    es = torch.tensor([from_cube(torch.rand(10, generator=g, dtype=torch.float64), 4, 2).e
                       for _ in range(4000)])
    assert es[:, 1:4].mean(0).tolist() == pytest.approx([0.25, 0.5, 0.75], abs=0.015)
