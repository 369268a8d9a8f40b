"""The Ray engine gives the in-process engine's search, also when interrupted and resumed
(tiny searches on one local 2-CPU Ray instance shared by the tests; skipped when ray is not
installed)."""

import numpy as np
import pytest
import torch

import sampletune.autosampling.search as search_mod
from sampletune.autosampling.search import SearchConfig, search
from sampletune.train import TrainConfig

ray = pytest.importorskip("ray")

TRAIN = TrainConfig(epochs=4, batch_size=16, lr=0.05, seed=0)
# 3 workers on 2 CPUs: actors of workers {0, 1} and {2}, so the best is copied both
# inside an actor and from one actor to another
KW = dict(workers=3, interval=5, warmup=1, nu=1)


@pytest.fixture(scope="module")
def ray_instance():
    """One Ray instance for the module; the searches join it instead of starting their own."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _same(a, b):
    x, y = a.schedule.to_arrays(), b.schedule.to_arrays()
    assert all(np.array_equal(x[k], y[k]) for k in x)
    assert [c["val_loss"] for c in a.curves] == [c["val_loss"] for c in b.curves]
    assert [c["test_loss"] for c in a.curves] == [c["test_loss"] for c in b.curves]
    for k, v in a.model_state.items():
        assert torch.equal(v, b.model_state[k]), k


@pytest.mark.slow
def test_ray_engine_matches_local_engine(ray_instance, tiny_data, tmp_path):
    local = search("mlp", tiny_data, TRAIN, SearchConfig(**KW), tmp_path / "local",
                   progress=False, plots=False)
    on_ray = search("mlp", tiny_data, TRAIN, SearchConfig(engine="ray", **KW), tmp_path / "ray",
                    progress=False, plots=False)
    _same(local, on_ray)
    assert set(local.schedule.workers) == {0, 1, 2}  # copies in both directions: a real check
    costs = on_ray.final["engine_costs"]
    assert on_ray.final["engine"] == "ray" and costs["intervals"] == local.schedule.num_intervals
    assert 0 < costs["busy_s"] <= costs["interval_s"] and costs["busy_s"] <= costs["work_s"]


@pytest.mark.slow
def test_ray_search_killed_mid_cycle_resumes_to_the_local_search(ray_instance, tiny_data, tmp_path,
                                                       monkeypatch):
    local = search("mlp", tiny_data, TRAIN, SearchConfig(**KW), tmp_path / "local",
                   progress=False, plots=False)
    real, saved = search_mod._checkpoint, []

    def killed_mid_cycle(path, state):
        real(path, state)
        saved.append(path)
        if len(saved) == 6:  # after interval 6 of 16: in epoch 1, the first of cycle 1
            raise KeyboardInterrupt

    scfg = SearchConfig(engine="ray", **KW)
    every = TRAIN.replace(checkpoint_every=0.0)  # a checkpoint after every interval
    monkeypatch.setattr(search_mod, "_checkpoint", killed_mid_cycle)
    with pytest.raises(KeyboardInterrupt):
        search("mlp", tiny_data, every, scfg, tmp_path / "ray", progress=False, plots=False)
    monkeypatch.setattr(search_mod, "_checkpoint", real)
    resumed = search("mlp", tiny_data, TRAIN, scfg, tmp_path / "ray", progress=False,
                     plots=False)
    _same(local, resumed)
    assert resumed.final["engine_costs"]["intervals"] < local.schedule.num_intervals
