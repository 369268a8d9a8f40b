"""The BO agent's plain-torch GP against the BoTorch/gpytorch model it reimplements."""

import math
import warnings

import pytest
import torch

from sampletune.swift import gp

botorch = pytest.importorskip("botorch")


def _data(n=12, dim=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, dim, generator=g, dtype=torch.float64)
    y = -((x - 0.3) ** 2).sum(1) + 0.1 * torch.randn(n, generator=g, dtype=torch.float64)
    return x, (y - y.mean()) / y.std()


def _botorch_mll(x, y, ard):
    from botorch.models import SingleTaskGP
    from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
    from gpytorch.kernels import RBFKernel
    from gpytorch.means import ConstantMean
    from gpytorch.mlls import ExactMarginalLogLikelihood

    kernel = get_covar_module_with_dim_scaled_prior(x.shape[1])
    if not ard:
        kernel = RBFKernel(lengthscale_prior=kernel.lengthscale_prior,
                           lengthscale_constraint=kernel.raw_lengthscale_constraint)
    mean = ConstantMean()
    mean.constant.data.zero_()
    mean.constant.requires_grad_(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SingleTaskGP(x, y.unsqueeze(-1), covar_module=kernel, mean_module=mean,
                             outcome_transform=None)
    return ExactMarginalLogLikelihood(model.likelihood, model).train()


def _theta(hyper):
    return torch.cat([torch.tensor([hyper.noise], dtype=torch.float64), hyper.lengthscale])


@pytest.mark.parametrize("ard", [True, False])
def test_prior_modes_are_botorchs_initial_values(ard):
    x, y = _data()
    mll = _botorch_mll(x, y, ard)
    start = gp.Hyperparameters.prior_modes(10, ard)
    ls = mll.model.covar_module.lengthscale.detach().reshape(-1)
    assert torch.equal(start.lengthscale, ls)
    assert start.noise == float(mll.likelihood.noise.detach())


@pytest.mark.parametrize("ard", [True, False])
def test_the_loss_and_its_gradient_are_gpytorchs(ard):
    x, y = _data()
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        size = 10 if ard else 1
        hyper = gp.Hyperparameters(0.05 + 2 * torch.rand(size, generator=g, dtype=torch.float64),
                                   float(0.001 + 0.3 * torch.rand(1, generator=g)))
        mll = _botorch_mll(x, y, ard)
        mll.likelihood.noise = hyper.noise
        mll.model.covar_module.lengthscale = hyper.lengthscale.reshape(1, -1)
        ref = -mll(mll.model(x), mll.model.train_targets)
        ref.backward()
        ref_grad = torch.cat([mll.likelihood.noise_covar.raw_noise.grad.reshape(-1),
                              mll.model.covar_module.raw_lengthscale.grad.reshape(-1)])
        loss, grad = gp.neg_log_marginal(_theta(hyper).numpy(), x.numpy(), y.numpy())
        assert loss == pytest.approx(float(ref.detach()), rel=1e-12)
        assert grad == pytest.approx(ref_grad.numpy(), rel=1e-9, abs=1e-12)


def test_the_fit_reaches_botorchs_optimum_within_its_bounds():
    from botorch.optim.fit import fit_gpytorch_mll_scipy

    for seed in range(3):
        x, y = _data(n=20, seed=seed)
        mll = _botorch_mll(x, y, ard=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_gpytorch_mll_scipy(mll, options={"maxiter": 200})
        ref = -float(mll(mll.model(x), mll.model.train_targets).detach())
        ours = gp.fit(x, y, gp.Hyperparameters.prior_modes(10, True), maxiter=200)
        loss, _ = gp.neg_log_marginal(_theta(ours).numpy(), x.numpy(), y.numpy())
        assert loss <= ref + 1e-4  # at least as good an optimum of the same objective
        assert ours.noise >= gp.NOISE_MIN and bool((ours.lengthscale >= gp.LENGTHSCALE_MIN).all())


def test_the_posterior_is_botorchs_under_the_same_hyperparameters():
    x, y = _data()
    hyper = gp.fit(x, y, gp.Hyperparameters.prior_modes(10, True), maxiter=20)
    mll = _botorch_mll(x, y, ard=True)
    mll.likelihood.noise = hyper.noise
    mll.model.covar_module.lengthscale = hyper.lengthscale.reshape(1, -1)
    mll.eval()
    q = torch.rand(7, 10, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    post = mll.model.posterior(q)
    mean, var = gp.Posterior(hyper, x, y)(q)
    assert torch.allclose(mean, post.mean.squeeze(-1).detach(), atol=1e-6)
    assert torch.allclose(var, post.variance.squeeze(-1).detach(), atol=1e-6)


def test_the_ucb_gradient_is_autograds():
    x, y = _data()
    post = gp.Posterior(gp.Hyperparameters.prior_modes(10, True), x, y)
    q = torch.rand(6, 10, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    q = torch.cat([q, x[:1]])  # a told point: its variance is near the floor
    q.requires_grad_(True)
    mean, var = post(q)
    ucb = mean + math.sqrt(2.0) * var.clamp_min(1e-12).sqrt()
    ucb.sum().backward()
    value, grad = post.ucb_and_grad(q.detach().numpy(), math.sqrt(2.0))
    assert value == pytest.approx(ucb.detach().numpy(), abs=1e-12)
    assert grad == pytest.approx(q.grad.numpy(), abs=1e-9)
