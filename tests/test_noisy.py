"""Noisy-label baselines (issue 8): exact values of each functional core, the trainer hook,
determinism, and every method end to end."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sampletune.augment import build_augment
from sampletune.errors import ConfigError
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
