"""The Ray engine gives the in-process engine's recorded schedule (one tiny search on a local
2-CPU Ray instance; skipped when ray is not installed)."""

import numpy as np
import pytest
import torch

from sampletune.autosampling.search import SearchConfig, search
from sampletune.train import TrainConfig

pytest.importorskip("ray")


@pytest.mark.slow
def test_ray_engine_matches_local_engine(tiny_data, tmp_path):
    train_cfg = TrainConfig(epochs=2, batch_size=16, lr=0.05, seed=0)
    kw = dict(workers=2, interval=5, warmup=1, nu=0)
    local = search("mlp", tiny_data, train_cfg, SearchConfig(**kw), tmp_path / "local",
                   progress=False, plots=False)
    ray = search("mlp", tiny_data, train_cfg, SearchConfig(engine="ray", ray_num_cpus=2, **kw),
                 tmp_path / "ray", progress=False, plots=False)
    a, b = local.schedule.to_arrays(), ray.schedule.to_arrays()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert set(local.schedule.workers) == {0, 1}  # both workers won somewhere: a real check
    assert [c["val_loss"] for c in local.curves] == [c["val_loss"] for c in ray.curves]
    for k, v in local.model_state.items():
        assert torch.equal(v, ray.model_state[k]), k
