import math

import numpy as np
import pytest
import torch

from sampletune.autosampling.recorder import ScheduleRecorder
from sampletune.autosampling.replay import ScheduleSampler, static_sampler
from sampletune.autosampling.schedule import RecordedSchedule
from sampletune.errors import ConfigError
from sampletune.samplers import ShuffleSampler


def _record(epochs=3, n=40, batch=8):
    """What a user's loop trains on: shuffled passes, one record() per step."""
    rec, seen = ScheduleRecorder(n, batch), []
    sampler = ShuffleSampler(n, seed=5)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for index in sampler.epoch_indices().split(batch):
            rec.record(index, epoch)
            seen.append(index)
    return rec, seen


def test_recorded_steps_replay_exactly(tmp_path):
    rec, seen = _record()
    rec.save(tmp_path / "schedule.npz")
    replay = ScheduleSampler(tmp_path / "schedule.npz")
    assert (replay.num_epochs, replay.batch_size, len(replay)) == (3, 8, 40)
    got = []
    for epoch in range(3):
        replay.set_epoch(epoch)
        got += list(torch.tensor(list(replay)).split(8))
    assert all(torch.equal(a, b) for a, b in zip(got, seen, strict=True))
    static = static_sampler(tmp_path / "schedule.npz", seed=0)
    assert torch.allclose(static.probabilities, torch.full((40,), 1 / 40, dtype=torch.float64))


def test_intervals_of_a_population_keep_worker_and_accuracy(tmp_path):
    rec = ScheduleRecorder(10, 2, steps_per_epoch=3)
    rec.record_interval(np.array([[0, 1], [2, 3]]), 0, worker=4, val_acc=0.5)
    rec.record(torch.tensor([4, 5]), 0)
    rec.record_interval([[6, 7], [8, 9], [0, 0]], 1, worker=2, val_acc=0.75)
    rec.save(tmp_path / "s.npz")
    s = RecordedSchedule.load(tmp_path / "s.npz")
    assert s.workers == [4, 0, 2] and s.epochs_of == [0, 0, 1]
    assert s.val_acc[0] == 0.5 and math.isnan(s.val_acc[1]) and s.val_acc[2] == 0.75
    assert s.epoch_indices(0).tolist() == [0, 1, 2, 3, 4, 5]
    assert s.counts()[0] == 3


@pytest.mark.parametrize("steps, field, match", [
    ([([1, 2, 3], 0)], "indices", "3 indices are not whole batches of 2"),
    ([([1, 10], 0)], "indices", "positions 1..10 outside \\[0, 10\\)"),
    ([([0.5, 1.0], 0)], "indices", "dtype float64"),
    ([([1, 2], 1)], "epoch", "1 as the first epoch"),
    ([([1, 2], 0), ([1, 2], 2)], "epoch", "2 after epoch 0"),
    ([([1, 2], 0), ([1, 2], 0), ([1, 2], 1), ([1, 2], 2)], "epoch",
     "epoch 1 has 1 batches, not 2"),
])
def test_bad_steps_name_the_field(steps, field, match):
    rec = ScheduleRecorder(10, 2)
    with pytest.raises(ConfigError, match=f"^{field}: {match}"):
        for indices, epoch in steps:
            rec.record(indices, epoch)


@pytest.mark.parametrize("offsets", ["reversed", "spread", "not from 0", "infinite n"])
def test_a_schedule_file_with_inconsistent_offsets_is_refused(tmp_path, offsets):
    rec, _ = _record()
    rec.save(tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz") as z:
        a = dict(z)
    a.update({"reversed": {"offsets": a["offsets"][::-1]},
              "spread": {"offsets": a["offsets"] * 10},
              "not from 0": {"offsets": a["offsets"] + 1},
              "infinite n": {"num_examples": np.array(np.inf)}}[offsets])
    np.savez(tmp_path / "bad.npz", **a)
    with pytest.raises(ConfigError, match="^schedule: "):
        RecordedSchedule.load(tmp_path / "bad.npz")


def test_a_partial_last_epoch_or_nothing_is_not_saved(tmp_path):
    with pytest.raises(ConfigError, match="^schedule: no batch recorded"):
        ScheduleRecorder(10, 2).save(tmp_path / "s.npz")
    rec = ScheduleRecorder(10, 2)
    rec.record([0, 1], 0)
    rec.record([2, 3], 0)
    rec.record([4, 5], 1)
    with pytest.raises(ConfigError, match="^epoch: epoch 1 has 1 batches, not 2"):
        rec.save(tmp_path / "s.npz")
    assert not (tmp_path / "s.npz").exists()
    with pytest.raises(ConfigError, match="^batch_size: "):
        ScheduleRecorder(10, 0)
