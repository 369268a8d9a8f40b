import pytest
import torch

from sampletune.errors import ConfigError
from sampletune.models import build_model, eval_mode, model_names

CASES = [
    ("mlp", (40,)), ("mlp", (1, 8, 8)), ("mlp", (3, 32, 32)),
    ("cnn1d", (40,)), ("cnn1d", (1, 40)), ("cnn1d", (2, 40)),
    ("smallcnn", (1, 8, 8)), ("smallcnn", (1, 28, 28)), ("smallcnn", (3, 32, 32)),
    ("resnet18", (3, 16, 16)), ("resnet18", (1, 8, 8)),
    ("wrn28_2", (3, 32, 32)), ("wrn28_2", (1, 8, 8)),
    ("tv:resnet18", (3, 32, 32)), ("tv:resnet18", (1, 28, 28)),
]


def test_every_registered_model_is_covered():
    registered = {n for n in model_names() if not n.startswith("tv:")}
    assert registered == {n for n, _ in CASES if not n.startswith("tv:")}


@pytest.mark.parametrize("name,shape", CASES)
def test_forward_gives_logits_and_every_parameter_learns(name, shape):
    torch.manual_seed(0)
    model = build_model(name, shape, 7)
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 7)
    out.square().sum().backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused


def test_cnn1d_accepts_unbatched_channel_axis():
    model = build_model("cnn1d", (40,), 10)
    x = torch.randn(3, 40)
    assert torch.equal(model(x), model(x.unsqueeze(1)))


@pytest.mark.parametrize("name,shape,params", [
    ("cnn1d", (40,), 5_210),  # the MNIST-1D paper's ConvBase
    ("resnet18", (3, 32, 32), 11_173_962),  # CIFAR ResNet-18
    ("wrn28_2", (3, 32, 32), 1_467_610),  # WRN-28-2 of FixMatch (1.5M)
])
def test_reference_parameter_counts(name, shape, params):
    model = build_model(name, shape, 10)
    assert sum(p.numel() for p in model.parameters()) == params


@pytest.mark.parametrize("name,shape", [
    ("nope", (1, 8, 8)), ("tv:not_a_model", (3, 32, 32)), ("smallcnn", (40,)),
    ("cnn1d", (1, 8, 8)), ("wrn28_2", (40,)), ("tv:resnet18", (2, 32, 32)),
])
def test_bad_model_requests_are_config_errors(name, shape):
    with pytest.raises(ConfigError, match="^model: ") as err:
        build_model(name, shape, 10)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_restores_the_mode_also_on_errors(training):
    model = torch.nn.Sequential(torch.nn.Dropout(0.5)).train(training)
    with eval_mode(model) as m:
        assert m is model and not model.training and not model[0].training
    assert model.training == training and model[0].training == training
    with pytest.raises(RuntimeError), eval_mode(model):
        raise RuntimeError
    assert model.training == training
