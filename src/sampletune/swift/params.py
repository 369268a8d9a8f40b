"""The parameters ``z`` of a Swift sampler and their bijection with the unit cube.

swift-sampler.txt section 3.2-3.3: ``z = [e_0..e_S, v_0..v_S, c_1..c_N]`` with ``e_0 = 0``,
``e_S = 1`` fixed, so ``S - 1 + S + 1 + N = 2S + N`` free numbers (10 for S = 4, N = 2).

Cube layout (``2S + N`` coordinates in ``[0, 1]``): ``[u_1..u_{S-1} | v_0..v_S | (c + 1) / 2]``.
The ordered inner end points come from ``u`` by the order-statistics map

    e_{S-1} = u_{S-1} ** (1 / (S-1)),   e_k = e_{k+1} * u_k ** (1 / k)   (k = S-2 .. 1),

a bijection from the cube onto ``{0 <= e_1 <= ... <= e_{S-1} <= 1}`` with constant Jacobian:
every point of the cube is a distinct feasible sampler (no space is wasted on infeasible or
duplicate orderings) and a uniform point of the cube is a uniform feasible sampler.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sampletune.errors import check


def cube_dim(segments: int, num_features: int) -> int:
    """Number of free parameters, ``2S + N`` (eqs. 8-9)."""
    return 2 * segments + num_features


@dataclass(frozen=True)
class SwiftParams:
    """One sampler ``z``: end points ``e`` (S+1, eq. 8), values ``v`` (S+1, eq. 8) and
    aggregation coefficients ``c`` (N, eq. 9)."""

    e: tuple[float, ...]
    v: tuple[float, ...]
    c: tuple[float, ...]

    def __post_init__(self):
        e, v, c = (tuple(float(a) for a in t) for t in (self.e, self.v, self.c))
        object.__setattr__(self, "e", e)
        object.__setattr__(self, "v", v)
        object.__setattr__(self, "c", c)
        check(len(e) >= 2, "params.e", f"{len(e)} end points; need S + 1 >= 2")
        check(len(v) == len(e), "params.v", f"{len(v)} values for {len(e)} end points")
        check(len(c) >= 1, "params.c", "needs at least one coefficient")
        check(e[0] == 0.0 and e[-1] == 1.0, "params.e", f"end points {e} must start at 0 and "
              "end at 1 (eq. 8)")
        check(all(a <= b for a, b in zip(e, e[1:], strict=False)), "params.e",
              f"end points {e} are not ordered (eq. 8)")
        check(all(0.0 <= a <= 1.0 for a in v), "params.v", f"values {v} outside [0, 1] (eq. 8)")
        check(all(-1.0 <= a <= 1.0 for a in c), "params.c",
              f"coefficients {c} outside [-1, 1] (eq. 9)")

    @property
    def segments(self) -> int:
        return len(self.e) - 1

    def to_dict(self) -> dict:
        return {"e": list(self.e), "v": list(self.v), "c": list(self.c)}

    @classmethod
    def from_dict(cls, d: dict) -> SwiftParams:
        """From :meth:`to_dict`'s form: ``e``, ``v``, ``c`` lists of numbers (not bools or
        strings: a hand-edited file is a one-line :class:`ConfigError`, never a cast)."""
        check(isinstance(d, dict), "params", f"is a {type(d).__name__}", "{e, v, c} lists")
        for key in ("e", "v", "c"):
            value = d.get(key)
            check(isinstance(value, list | tuple) and all(
                isinstance(a, int | float) and not isinstance(a, bool) for a in value),
                f"params.{key}", f"{value!r} is not a list of numbers", "a list of numbers")
        return cls(tuple(d["e"]), tuple(d["v"]), tuple(d["c"]))


def from_cube(u: Tensor, segments: int, num_features: int) -> SwiftParams:
    """The sampler at cube point ``u`` ``(2S + N,)`` (values outside [0, 1] are clipped)."""
    S, N = segments, num_features
    check(S >= 1, "segments", f"{S} must be positive", ">= 1")
    u = torch.as_tensor(u, dtype=torch.float64).flatten().clamp(0.0, 1.0)
    check(u.numel() == cube_dim(S, N), "cube", f"{u.numel()} coordinates for S={S}, N={N}",
          str(cube_dim(S, N)))
    m = S - 1
    inner = [0.0] * m
    upper = 1.0
    for k in range(m, 0, -1):  # k-th smallest of m uniform order statistics
        upper = upper * float(u[k - 1]) ** (1.0 / k)
        inner[k - 1] = upper
    e = (0.0, *inner, 1.0)
    v = tuple(u[m: m + S + 1].tolist())
    c = tuple((2.0 * u[m + S + 1:] - 1.0).tolist())
    return SwiftParams(e, v, c)


def to_cube(params: SwiftParams) -> Tensor:
    """Inverse of :func:`from_cube`: float64 ``(2S + N,)`` in ``[0, 1]``."""
    e = params.e
    m = params.segments - 1
    u = []
    for k in range(1, m + 1):
        upper = e[k + 1] if k < m else 1.0
        u.append((e[k] / upper) ** k if upper > 0 else 0.0)
    coords = u + list(params.v) + [(c + 1.0) / 2.0 for c in params.c]
    return torch.tensor(coords, dtype=torch.float64).clamp(0.0, 1.0)


@dataclass(frozen=True)
class SwiftSpace:
    """The Swift family as a :class:`~sampletune.swift.trials.SearchSpace`: cube points of
    ``2S + N`` coordinates <-> :class:`SwiftParams` (JSON: :meth:`SwiftParams.to_dict`)."""

    segments: int
    num_features: int

    @property
    def dim(self) -> int:
        return cube_dim(self.segments, self.num_features)

    def candidate(self, x: Tensor) -> SwiftParams:
        return from_cube(x, self.segments, self.num_features)

    def point(self, candidate: SwiftParams) -> Tensor:
        return to_cube(candidate)

    def to_dict(self, candidate: SwiftParams) -> dict:
        return candidate.to_dict()

    def from_dict(self, d: dict) -> SwiftParams:
        params = SwiftParams.from_dict(d)
        check(params.segments == self.segments and len(params.c) == self.num_features,
              "params", f"{params.segments} segments and {len(params.c)} coefficients",
              f"{self.segments} and {self.num_features}")
        return params
