"""Input checks of the training, data and model APIs: one-line ConfigErrors, no casts."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import LazyX
from torch import nn

import sampletune.data.registry as data_registry
import sampletune.models.registry as model_registry
from sampletune.data import RawDataset, load_dataset, make_splits, register_dataset
from sampletune.errors import ConfigError
from sampletune.models import build_model, register_model
from sampletune.samplers import ShuffleSampler
from sampletune.train import TrainConfig, seeded_model, train

CFG = TrainConfig(epochs=1, batch_size=32, lr=0.05)


@pytest.fixture(autouse=True)
def _own_registries(monkeypatch):
    """This module's registrations stay in copies of the registries."""
    data_registry.dataset_names()
    model_registry.model_names()  # the built-ins, before the copies
    for module, names in ((data_registry, ("_DATASETS", "_USES")),
                          (model_registry, ("_MODELS", "_CHECKED"))):
        for name in names:
            monkeypatch.setattr(module, name, getattr(module, name).copy())


def one_line(field):
    return rf"^{field}: [^\n]*$"


@pytest.mark.parametrize("field,value", [
    ("nesterov", "no"), ("compile", "no"), ("epochs", 1.5), ("epochs", True),
    ("seed", 1.5), ("seed", -1), ("seed", True), ("eval_every", 1.5), ("budget", True),
    ("device", "tpu"), ("lr", "0.1"), ("batch_size", "8"), ("batch_size", 8.5),
    ("milestones", 0.5), ("milestones", ("0.5",)), ("checkpoint_every", "30"),
    ("loader_workers", 1.5), ("final_lr", float("inf")),
])
def test_train_config_refuses_wrong_types(field, value):
    with pytest.raises(ConfigError, match=one_line(field)):
        TrainConfig(**{field: value})


def test_builtins_are_registered_before_a_users_names():
    code = (
        "from sampletune.data import register_dataset\n"
        "from sampletune.models import register_model\n"
        "from sampletune.errors import ConfigError\n"
        "for reg, name in ((register_dataset, 'digits'), (register_model, 'mlp')):\n"
        "    try:\n"
        "        reg(name)(lambda *a: None)\n"
        "        print('replaced', name)\n"
        "    except ConfigError as err:\n"
        "        print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert [line.split(":")[0] for line in out] == ["dataset", "model"], out
    assert all("already registered" in line for line in out), out


def _raw(name="toy", **kw):
    g = torch.Generator().manual_seed(0)
    d = dict(x_train=torch.rand(30, 4, generator=g), y_train=torch.arange(30) % 3,
             x_test=torch.rand(9, 4, generator=g), y_test=torch.arange(9) % 3,
             num_classes=3, kind="vector", hflip=False)
    return RawDataset(name, **{**d, **kw})


def test_a_duplicate_name_is_refused_unless_replaced():
    register_dataset("test-api-dup", data_dir=None, download=False)(lambda d, dl: _raw("a"))
    with pytest.raises(ConfigError, match=one_line("dataset")):
        register_dataset("test-api-dup", data_dir=None, download=False)(lambda d, dl: _raw())
    register_dataset("test-api-dup", data_dir=None, download=False,
                     replace=True)(lambda d, dl: _raw("b"))
    assert load_dataset("test-api-dup").name == "b"
    register_model("test-api-dup")(lambda shape, k: nn.Sequential(nn.Flatten(), nn.Linear(4, k)))
    with pytest.raises(ConfigError, match=one_line("model")):
        register_model("test-api-dup")(lambda shape, k: nn.Linear(4, k))


@pytest.mark.parametrize("call,field", [
    (lambda: register_model(5), "model"), (lambda: register_dataset(None), "dataset"),
    (lambda: register_dataset("q", download="no"), "download"),
])
def test_registration_arguments_are_checked(call, field):
    with pytest.raises(ConfigError, match=one_line(field)):
        call()


def test_a_loader_must_return_a_raw_dataset():
    register_dataset("test-api-dict", data_dir=None, download=False)(lambda d, dl: {"x": 1})
    with pytest.raises(ConfigError, match=one_line("dataset")):
        load_dataset("test-api-dict")


@pytest.mark.parametrize("kw,field", [({"kind": "audio"}, "dataset.kind"),
                                      ({"hflip": "no"}, "dataset.hflip")])
def test_raw_dataset_kind_and_hflip_are_checked(kw, field):
    with pytest.raises(ConfigError, match=one_line(field)):
        _raw(**kw)


def test_a_re_registered_model_is_checked_again():
    def linear(extra):
        return lambda shape, k: nn.Sequential(nn.Flatten(), nn.Linear(4, k + extra))

    register_model("test-api-recheck")(linear(0))
    build_model("test-api-recheck", (4,), 3)
    register_model("test-api-recheck", replace=True)(linear(1))
    with pytest.raises(ConfigError, match=one_line("model")):
        build_model("test-api-recheck", (4,), 3)


class Head(nn.Module):
    def __init__(self, outputs):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, outputs))

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("outputs", [2, 4])
def test_train_checks_the_logits_against_the_classes(tiny_data, outputs):
    with pytest.raises(ConfigError, match=one_line("model")):
        train(Head(outputs), tiny_data, ShuffleSampler(len(tiny_data.train), seed=0), CFG,
              progress=False)


def test_train_refuses_a_sampler_over_more_examples(tiny_data):
    with pytest.raises(ConfigError, match=one_line("sampler")):
        train(Head(3), tiny_data, ShuffleSampler(len(tiny_data.train) + 5, seed=0), CFG,
              progress=False)


class ListSampler(torch.utils.data.Sampler):
    """A plain sampler that says nothing of its range."""

    def __init__(self, indices):
        self.indices = indices

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)


@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize("bad", [-1, 10_000])
def test_an_index_outside_the_split_is_one_line(tiny_data, bad, streaming):
    """Past the split it failed deep in torch; a negative index silently trained on the
    split's last examples. Both loaders check."""
    from dataclasses import replace

    from sampletune.data import Split

    data = tiny_data
    if streaming:
        t = tiny_data.train
        data = replace(tiny_data, train=Split(LazyX(t.x), t.y, t.clean_y, t.noisy))
        assert not data.train.in_memory
    with pytest.raises(ConfigError, match=f"^sampler: ListSampler drew index {bad}, outside"):
        train(Head(3), data, ListSampler([0, 1, bad, 2]), CFG.replace(loader_workers=0),
              progress=False)


@pytest.mark.parametrize("kw,field", [({"epochs": 0}, "epochs"), ({"epochs": 1.7}, "epochs"),
                                      ({"steps_per_epoch": 0}, "steps_per_epoch"),
                                      ({"steps_per_epoch": 2.5}, "steps_per_epoch")])
def test_train_epochs_and_steps_are_integers(tiny_data, kw, field):
    with pytest.raises(ConfigError, match=one_line(field)):
        train(Head(3), tiny_data, ShuffleSampler(len(tiny_data.train), seed=0), CFG,
              progress=False, **kw)


def test_float_seeds_are_refused_not_truncated():
    assert TrainConfig(epochs=np.int64(2), seed=2**40, lr=1).seed == 2**40  # derived seeds
    with pytest.raises(ConfigError, match=one_line("seed")):
        make_splits(_raw(), seed=1.5)
    with pytest.raises(ConfigError, match=one_line("seed")):
        seeded_model(lambda: nn.Linear(4, 3), seed=1.5)
