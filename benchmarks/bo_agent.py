"""Seconds the BO agent spends in a 40-trial Swift search, against the BoTorch path it replaced.

Contenders, interleaved in one process (so load on the machine hits both alike), each a
``BOAgent`` with the search's defaults in the 10-D Swift space:

* ``plain torch``: today's agent (:mod:`sampletune.swift.gp`: the GP's fit by scipy's
  L-BFGS-B on a plain-torch loss, UCB maximised with its analytic gradient).
* ``BoTorch``: the same agent with the path before it, kept below as :class:`BoTorchAgent`
  (BoTorch's ``SingleTaskGP`` fitted by ``fit_gpytorch_mll_scipy``, UCB maximised through
  autograd with ``torch.optim.Adam``).

The objective is a synthetic score with the grain of a validation accuracy (rounded to
1/200); per search the seconds in ``ask`` and ``tell``, and the best score found (the two
paths compute the same model, so their searches should be equally good). Median seconds
and the ratio over ``--seeds``. BoTorch is a ``dev`` extra (``pip install -e '.[dev]'``).

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/bo_agent.py [--seeds 0 1 2]`` (default: 20 seeds).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings

import torch

from sampletune.swift import gp
from sampletune.swift.agents import BOAgent, _standardise

TRIALS = 40
DIM = 10


class BoTorchAgent(BOAgent):
    """``BOAgent`` with BoTorch's GP fit and autograd's UCB gradient (the path before
    :mod:`sampletune.swift.gp`)."""

    def tell(self, x, score):
        self.record(x, score)
        if len(self.xs) >= self.n_init and any(s is not None for s in self.scores):
            x, y = torch.stack(self.xs), _standardise(self.imputed())
            if self._hyper is None or (len(self.xs) - self.n_init) % self.refit_every == 0:
                self._hyper = self._botorch_fit(x, y, self._hyper)
            self._posterior = gp.Posterior(self._hyper, x, y)

    def _botorch_fit(self, x, y, warm):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from botorch.models import SingleTaskGP
            from botorch.models.utils.gpytorch_modules import (
                get_covar_module_with_dim_scaled_prior,
            )
            from botorch.optim.fit import fit_gpytorch_mll_scipy
            from gpytorch.means import ConstantMean
            from gpytorch.mlls import ExactMarginalLogLikelihood

            mean = ConstantMean()
            mean.constant.data.zero_()
            mean.constant.requires_grad_(False)
            model = SingleTaskGP(x, y.unsqueeze(-1), mean_module=mean, outcome_transform=None,
                                 covar_module=get_covar_module_with_dim_scaled_prior(self.dim))
            if warm is not None:
                model.likelihood.noise = warm.noise
                model.covar_module.lengthscale = warm.lengthscale.reshape(1, -1)
            mll = ExactMarginalLogLikelihood(model.likelihood, model).train()
            fit_gpytorch_mll_scipy(mll, options={"maxiter": self.fit_maxiter})
        return gp.Hyperparameters(model.covar_module.lengthscale.detach().reshape(-1).clone(),
                                  float(model.likelihood.noise.detach()))

    def _ucb_argmax(self, posterior, seed):
        gen = torch.Generator().manual_seed(seed)
        raw = torch.rand(self.raw_samples, self.dim, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            top = self.ucb(raw, posterior).topk(min(self.num_restarts, self.raw_samples)).indices
        x = raw[top].clone().requires_grad_(True)
        opt = torch.optim.Adam([x], lr=0.05)
        for _ in range(self.acqf_maxiter):
            opt.zero_grad()
            (-self.ucb(x, posterior).sum()).backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(0.0, 1.0)
        with torch.no_grad():
            cands = torch.cat([x.detach(), raw[top]])
            return cands[self.ucb(cands, posterior).argmax()].clone()


def score(x: torch.Tensor, seed: int) -> float:
    """A smooth bump with a ripple, rounded to 1/200 like a 200-example validation accuracy."""
    centre = torch.linspace(0.2, 0.8, DIM, dtype=torch.float64).roll(seed)
    value = math.exp(-float(((x - centre) ** 2).sum())) + 0.05 * math.sin(12 * float(x[seed % DIM]))
    return round(200 * value) / 200


def search(cls, seed: int) -> tuple[float, float, float]:
    """Seconds in ask, seconds in tell, best score of a ``TRIALS``-trial search."""
    agent = cls(DIM, seed)
    asked = told = 0.0
    for _ in range(TRIALS):
        start = time.perf_counter()
        x = agent.ask()
        asked += time.perf_counter() - start
        s = score(x, seed)
        start = time.perf_counter()
        agent.tell(x, s)
        told += time.perf_counter() - start
    return asked, told, max(agent.scores)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(20)))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    contenders = {"plain torch": BOAgent, "BoTorch": BoTorchAgent}
    for cls in contenders.values():  # imports and first calls out of the timings
        search(cls, 0)
    rows = {name: [] for name in contenders}
    for seed in args.seeds:
        for name, cls in contenders.items():
            rows[name].append(search(cls, seed))
    base = statistics.median(a + t for a, t, _ in rows["plain torch"])
    print(f"BO agent, {TRIALS} trials in {DIM}-D, seeds {args.seeds}, "
          f"{torch.get_num_threads()} torch thread(s)")
    print(f"{'path':<12} {'ask s':>7} {'tell s':>7} {'total s':>8} {'x plain':>8} "
          f"{'best score':>16}")
    for name, runs in rows.items():
        ask = statistics.median(a for a, _, _ in runs)
        tell = statistics.median(t for _, t, _ in runs)
        total = statistics.median(a + t for a, t, _ in runs)
        best = [b for _, _, b in runs]
        print(f"{name:<12} {ask:7.3f} {tell:7.3f} {total:8.3f} {total / base:8.2f} "
              f"{statistics.mean(best):8.3f} ± {statistics.stdev(best):.3f}")


if __name__ == "__main__":
    main()
