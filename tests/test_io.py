from sampletune import io


def test_append_after_a_torn_line_keeps_every_later_record(tmp_path):
    path = tmp_path / "trials.jsonl"
    io.append_jsonl(path, {"trial": 0})
    with open(path, "a") as fh:  # a kill in the middle of writing trial 1
        fh.write('{"trial": 1, "x": [0.1')
    assert io.read_jsonl(path) == [{"trial": 0}]
    io.append_jsonl(path, {"trial": 1})
    io.append_jsonl(path, {"trial": 2})
    assert io.read_jsonl(path) == [{"trial": 0}, {"trial": 1}, {"trial": 2}]


def test_atomic_writes_leave_no_temp_files(tmp_path):
    io.write_json(tmp_path / "a.json", {"k": [1, 2]})
    io.save_npz(tmp_path / "b.npz", x=[1, 2, 3])
    assert io.read_json(tmp_path / "a.json") == {"k": [1, 2]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.npz"]
