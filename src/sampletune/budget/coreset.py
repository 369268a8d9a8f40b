"""Fixed training subsets for the comparison of Fig. 1a/b (section 4.4): a random subset
and a k-center greedy core-set (Sener & Savarese, ICLR 2018), both kept for all of training.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sampletune.errors import check
from sampletune.models import eval_mode
from sampletune.samplers.weighted import subset_sampler  # noqa: F401  (re-exported)


def random_subset(n: int, k: int, generator: torch.Generator) -> Tensor:
    """(k,) distinct indices of ``range(n)`` drawn uniformly."""
    check(1 <= k <= n, "subset_size", f"{k} is outside [1, {n}]")
    return torch.randperm(n, generator=generator)[:k].sort().values


def kcenter_greedy(features: Tensor, k: int, generator: torch.Generator,
                   chunk: int = 4096) -> Tensor:
    """(k,) indices chosen by k-center greedy (Sener & Savarese 2018, Algorithm 1): start
    from a random point, then repeatedly add the point farthest (Euclidean) from the chosen
    set. ``features`` is (N, d); distances are updated in chunks of ``chunk`` rows."""
    n = features.shape[0]
    check(1 <= k <= n, "subset_size", f"{k} is outside [1, {n}]")
    feats = features.to(torch.float32)
    chosen = torch.empty(k, dtype=torch.long)
    chosen[0] = torch.randint(0, n, (1,), generator=generator)
    min_dist = torch.full((n,), float("inf"))
    for j in range(1, k):
        centre = feats[chosen[j - 1]]
        for s in range(0, n, chunk):
            d = (feats[s:s + chunk] - centre).pow(2).sum(1)
            min_dist[s:s + chunk] = torch.minimum(min_dist[s:s + chunk], d)
        min_dist[chosen[:j]] = -1.0
        chosen[j] = int(min_dist.argmax())
    return chosen.sort().values


@torch.no_grad()
def penultimate_features(model: nn.Module, x: Tensor, batch_size: int = 1024) -> Tensor:
    """(N, d) inputs to ``model``'s last ``nn.Linear`` (eval mode), on the CPU."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    check(bool(linears), "coreset", "the model has no nn.Linear head to take features from")
    grabbed: list[Tensor] = []
    hook = linears[-1].register_forward_pre_hook(lambda _m, inp: grabbed.append(inp[0].cpu()))
    device = next(model.parameters()).device
    try:
        with eval_mode(model):
            for s in range(0, len(x), batch_size):
                model(x[s:s + batch_size].to(device))
    finally:
        hook.remove()
    return torch.cat(grabbed).flatten(1)
