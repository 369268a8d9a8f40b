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


@pytest.mark.parametrize("damage, match", [
    ("gap", "epochs do not run from 0 without gaps"),
    ("negative", "epochs do not run from 0 without gaps"),
    ("short", "epochs do not each hold 5 batches of 8"),
    ("long", "epochs do not each hold 4 batches of 8"),
    ("float indices", "indices is float64"),
    ("float epochs", "epoch is float64"),
    ("float format", "format is float64"),
    ("float batch", "batch_size is float64"),
])
def test_a_schedule_file_with_bad_epochs_or_types_is_refused(tmp_path, damage, match):
    """Each epoch of a schedule file must be whole (steps_per_epoch batches), the epochs
    contiguous from 0, and every count an integer: nothing is truncated or replayed short."""
    rec, _ = _record()  # 3 epochs of 5 batches of 8, one interval each
    rec.save(tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz") as z:
        a = dict(z)
    a.update({
        "gap": {"epoch": np.array([0, 1, 3])},
        "negative": {"epoch": np.array([-1, 0, 1])},
        "short": {"indices": a["indices"][:-8], "offsets": a["offsets"] - [0, 0, 0, 8]},
        "long": {"steps_per_epoch": np.array(4)},
        "float indices": {"indices": a["indices"] + 0.7},
        "float epochs": {"epoch": a["epoch"].astype(float)},
        "float format": {"format": np.array(1.0)},
        "float batch": {"batch_size": np.array(8.0)},
    }[damage])
    np.savez(tmp_path / "bad.npz", **a)
    with pytest.raises(ConfigError, match=f"^schedule: its {match}"):
        RecordedSchedule.load(tmp_path / "bad.npz")


def test_only_a_checkpoint_may_end_in_a_partial_epoch():
    rec, _ = _record()
    a = rec.schedule.to_arrays()
    a.update(indices=a["indices"][:-8], offsets=a["offsets"] - [0, 0, 0, 8])
    assert RecordedSchedule.from_arrays(a, partial=True).num_intervals == 3
    with pytest.raises(ConfigError, match="^schedule: its epochs do not each hold"):
        RecordedSchedule.from_arrays(a)
