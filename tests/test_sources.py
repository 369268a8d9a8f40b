import gzip
import pickle
import random

import numpy as np
import pytest
import torch

from sampletune.data import dataset_names, load_dataset, make_splits, sources
from sampletune.errors import ConfigError


def one_line_config_error(name, data_dir=None, match="data_dir", **kw):
    with pytest.raises(ConfigError, match=match) as err:
        load_dataset(name, data_dir, **kw)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_builtins_are_registered():
    assert {"digits", "mnist1d", "fashion-mnist", "cifar10", "cifar100", "svhn", "npz",
            "imagefolder"} <= set(dataset_names())


# --- holdout / digits ---------------------------------------------------------------------


def test_stratified_holdout_is_fixed_disjoint_and_per_class():
    y = np.repeat(np.arange(3), [10, 20, 5])
    tr, te = sources.stratified_holdout(y, 0.2, seed=0)
    tr2, te2 = sources.stratified_holdout(y, 0.2, seed=0)
    assert np.array_equal(te, te2) and np.array_equal(tr, tr2)
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(len(y)))
    assert np.bincount(y[te]).tolist() == [2, 4, 1]
    assert not np.array_equal(te, sources.stratified_holdout(y, 0.2, seed=1)[1])


def test_digits_shapes_range_and_determinism():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.x_train.shape == (1438, 1, 8, 8) and a.x_test.shape == (359, 1, 8, 8)
    assert a.x_train.dtype == torch.float32 and a.y_train.dtype == torch.int64
    assert a.x_train.min() == 0 and a.x_train.max() == 1
    assert (a.num_classes, a.kind, a.hflip, a.input_shape) == (10, "image", False, (1, 8, 8))
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_train, b.y_train)
    counts = torch.bincount(a.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified 20%
    splits = make_splits(a, seed=0)
    assert len(splits.train) + len(splits.val) == 1438


# --- mnist1d --------------------------------------------------------------------------------


def test_mnist1d_generates_offline_caches_and_leaves_global_rng(tmp_path, monkeypatch):
    np_state, py_state = np.random.get_state(), random.getstate()
    raw = load_dataset("mnist1d", tmp_path)
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    assert random.getstate() == py_state
    assert raw.x_train.shape == (4000, 40) and raw.x_test.shape == (1000, 40)
    assert raw.x_train.dtype == torch.float32 and raw.kind == "sequence"
    assert raw.y_train[:10].tolist() == [2, 6, 4, 5, 6, 6, 6, 0, 3, 1]  # seed 42, pinned
    (cache,) = tmp_path.glob("mnist1d-*.npz")

    def no_generation(args):
        raise AssertionError("generated again despite the cache")

    monkeypatch.setattr(sources, "_generate_mnist1d", no_generation)
    again = load_dataset("mnist1d", tmp_path)
    assert torch.equal(again.x_train, raw.x_train) and torch.equal(again.y_test, raw.y_test)


# --- fashion-mnist --------------------------------------------------------------------------


def write_idx(path, arr, gz):
    header = bytes([0, 0, 8, arr.ndim]) + np.asarray(arr.shape, ">i4").tobytes()
    data = header + arr.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


def write_fashion(folder, n=10, nt=10):  # every class present: loaders refuse less
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(n) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (nt, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(nt) % 10,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for i, (stem, arr) in enumerate(arrays.items()):
        write_idx(folder / stem, arr, gz=i % 2 == 0)  # a mix of .gz and raw files
    return arrays


@pytest.mark.parametrize("layout", [".", "FashionMNIST/raw"])
def test_fashion_mnist_reads_idx_files(tmp_path, layout):
    arrays = write_fashion(tmp_path / layout)
    raw = load_dataset("fashion-mnist", tmp_path)
    assert raw.x_train.shape == (10, 1, 28, 28) and raw.x_test.shape == (10, 1, 28, 28)
    expected = torch.from_numpy(arrays["train-images-idx3-ubyte"] / 255.0).float()
    assert torch.allclose(raw.x_train[:, 0], expected)
    assert raw.y_test.tolist() == list(range(10)) and raw.hflip
    assert raw.classes[9] == "Ankle boot"


def test_fashion_mnist_missing_and_corrupt(tmp_path, monkeypatch):
    msg = one_line_config_error("fashion-mnist", tmp_path)
    assert "dataset-fashion-mnist" in msg and "--data-dir" in msg
    monkeypatch.setattr(sources, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "absent")
    assert "absent" in one_line_config_error("fashion-mnist")
    write_fashion(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(3), gz=False)
    assert "3 labels" in one_line_config_error("fashion-mnist", tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    assert "IDX" in one_line_config_error("fashion-mnist", tmp_path)


def test_a_failed_fashion_mnist_download_is_one_line(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(root, download):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\n<urlopen error>")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    msg = one_line_config_error("fashion-mnist", tmp_path / "new", match="^download: ",
                                download=True)
    assert "cannot download Fashion-MNIST into" in msg and "urlopen" in msg


def test_download_may_name_a_data_dir_it_will_create(tmp_path):
    from sampletune.experiments.config import DataConfig

    assert DataConfig(dataset="cifar10", data_dir=str(tmp_path / "new"), download=True)
    with pytest.raises(ConfigError, match="^data_dir: .* does not exist"):
        DataConfig(dataset="cifar10", data_dir=str(tmp_path / "new"))


@pytest.mark.parametrize("spoil", ["short header", "negative dims", "not gzip"])
def test_fashion_mnist_damaged_headers_are_one_line_errors(tmp_path, spoil):
    write_fashion(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes({
        "short header": gzip.compress(b"\x00\x00\x08\xff" + b"\x00" * 8),
        "negative dims": gzip.compress(b"\x00\x00\x08\x02" + np.array([-2, -30], ">i4")
                                       .tobytes()),
        "not gzip": b"plain bytes, not gzip",
    }[spoil])
    one_line_config_error("fashion-mnist", tmp_path)


# --- cifar / svhn ---------------------------------------------------------------------------


def dump(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj))


def fake_rows(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)


def test_cifar10_from_fake_batches(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    batches = [fake_rows(2, i) for i in range(5)]
    for i, rows in enumerate(batches):
        dump(base / f"data_batch_{i + 1}", {"data": rows, "labels": [2 * i, 2 * i + 1]})
    dump(base / "test_batch", {"data": fake_rows(3, 9), "labels": [7, 8, 9]})
    dump(base / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    raw = load_dataset("cifar10", tmp_path)
    assert raw.x_train.shape == (10, 3, 32, 32) and raw.x_test.shape == (3, 3, 32, 32)
    assert raw.x_train.is_contiguous() and raw.x_train.dtype == torch.float32
    # CIFAR rows are R, G, B planes of 32x32, row-major
    assert raw.x_train[2, 1, 3, 4] == pytest.approx(batches[1][0, 1024 + 3 * 32 + 4] / 255)
    assert raw.y_train.tolist()[:4] == [0, 1, 2, 3] and raw.y_test.tolist() == [7, 8, 9]
    assert (raw.num_classes, raw.hflip, raw.classes[3]) == (10, True, "c3")


@pytest.mark.parametrize("spoil", ["float pixels", "pixels above 255", "rows of 100",
                                   "fractional labels", "text labels", "no label names"])
def test_cifar_files_are_checked_not_cast(tmp_path, spoil):
    """A wrong value is refused in one line: never wrapped into [0, 255], truncated to an
    integer or reshaped from the wrong width."""
    base = tmp_path / "cifar-10-batches-py"
    for i in range(5):
        rows, labels = fake_rows(2, i), [2 * i, 2 * i + 1]
        if i == 0:
            rows = {"float pixels": rows * 1000.0, "pixels above 255": rows.astype(int) + 300,
                    "rows of 100": rows[:, :100]}.get(spoil, rows)
            labels = {"fractional labels": [0.5, 1.5], "text labels": ["a", "b"]
                      }.get(spoil, labels)
        dump(base / f"data_batch_{i + 1}", {"data": rows, "labels": labels})
    dump(base / "test_batch", {"data": fake_rows(3, 9), "labels": [7, 8, 9]})
    meta = {} if spoil == "no label names" else {"label_names": [f"c{i}" for i in range(10)]}
    dump(base / "batches.meta", meta)
    one_line_config_error("cifar10", tmp_path)


def test_cifar100_from_fake_files(tmp_path):
    base = tmp_path / "cifar-100-python"
    fine = [0, 99, 5, 6, *range(1, 5), *range(7, 99)]  # every class present
    dump(base / "train", {"data": fake_rows(100, 0), "fine_labels": fine,
                          "coarse_labels": [c // 5 for c in fine]})
    dump(base / "test", {"data": fake_rows(2, 1), "fine_labels": [42, 1],
                         "coarse_labels": [0, 1]})
    dump(base / "meta", {"fine_label_names": [f"f{i}" for i in range(100)]})
    raw = load_dataset("cifar100", tmp_path)
    assert raw.x_train.shape == (100, 3, 32, 32) and raw.num_classes == 100
    assert raw.y_train.tolist()[:4] == [0, 99, 5, 6] and raw.y_test.tolist() == [42, 1]


def test_svhn_from_fake_mat_files(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    xs = {}
    for split, n in (("train", 10), ("test", 2)):
        xs[split] = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)  # SVHN's H, W, C, N
        labels = [[10], *([d] for d in range(1, 10))][:n]
        savemat(tmp_path / f"{split}_32x32.mat", {"X": xs[split], "y": np.array(labels, np.uint8)})
    raw = load_dataset("svhn", tmp_path)
    assert raw.x_train.shape == (10, 3, 32, 32) and raw.x_test.shape == (2, 3, 32, 32)
    assert raw.x_train[4, 2, 5, 7] == pytest.approx(xs["train"][5, 7, 2, 4] / 255)
    assert raw.y_train.tolist() == list(range(10)) and not raw.hflip  # label 10 is digit 0


@pytest.mark.parametrize("content", ["no X", "garbage"])
def test_svhn_damaged_mat_files_are_one_line_errors(tmp_path, content):
    from scipy.io import savemat

    for split in ("train", "test"):
        path = tmp_path / f"{split}_32x32.mat"
        if content == "no X":
            savemat(path, {"y": np.ones((2, 1), np.uint8)})
        else:
            path.write_bytes(b"not a MATLAB file at all" * 10)
    one_line_config_error("svhn", tmp_path)


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "svhn"])
def test_torchvision_sets_missing(tmp_path, name):
    assert "--download" in one_line_config_error(name, None)
    msg = one_line_config_error(name, tmp_path)
    assert str(tmp_path) in msg and "--download" in msg


# --- npz -----------------------------------------------------------------------------------


def test_npz_round_trip_with_test_arrays(tmp_path):
    rng = np.random.default_rng(0)
    x, xt = rng.normal(size=(12, 2, 5)).astype(np.float32), rng.normal(size=(4, 2, 5))
    y, yt = np.arange(12) % 4, np.array([0, 1, 2, 3])
    np.savez(tmp_path / "data.npz", x=x, y=y, x_test=xt, y_test=yt)
    raw = load_dataset("npz", tmp_path)  # a folder holding data.npz
    assert torch.equal(raw.x_train, torch.from_numpy(x)) and raw.y_test.tolist() == [0, 1, 2, 3]
    assert raw.x_test.dtype == torch.float32 and raw.y_train.dtype == torch.int64
    assert (raw.num_classes, raw.kind, raw.input_shape) == (4, "sequence", (2, 5))


def test_npz_holdout_and_uint8_images(tmp_path):
    x = np.full((20, 1, 3, 3), 255, np.uint8)
    np.savez(tmp_path / "mine.npz", x=x, y=np.arange(20) % 2)
    raw = load_dataset("npz", tmp_path / "mine.npz")
    assert len(raw.y_train) == 16 and len(raw.y_test) == 4 and raw.kind == "image"
    assert raw.x_train.max() == 1.0 and torch.bincount(raw.y_test).tolist() == [2, 2]
    assert torch.equal(raw.y_test, load_dataset("npz", tmp_path / "mine.npz").y_test)


@pytest.mark.parametrize("arrays,field", [
    ({"x": np.zeros((4, 3))}, "npz.y"),
    ({"x": np.zeros((4, 3)), "y": np.zeros(3, int)}, "npz.y"),
    ({"x": np.zeros((4, 3)), "y": np.array([0, 1, -1, 0])}, "npz.y"),
    ({"x": np.zeros((4, 3)), "y": np.zeros(4)}, "npz.y"),
    ({"x": np.zeros(4), "y": np.zeros(4, int)}, "npz.x"),
    ({"x": np.zeros((0, 3)), "y": np.zeros(0, int)}, "npz.y"),
    ({"x": np.array([[np.nan]] * 4), "y": np.zeros(4, int)}, "npz.x"),
    ({"x": np.array([["a"]] * 4), "y": np.zeros(4, int)}, "npz.x"),
    ({"x": np.zeros((4, 3)), "y": np.zeros(4, int), "x_test": np.zeros((2, 3))}, "npz.x_test"),
    ({"x": np.zeros((4, 3)), "y": np.zeros(4, int), "x_test": np.zeros((2, 4)),
      "y_test": np.zeros(2, int)}, "npz.x_test"),
    ({"x": np.zeros((4, 3)), "y": np.zeros(4, int), "x_test": np.zeros((2, 3)),
      "y_test": np.zeros(3, int)}, "npz.y_test"),
    ({"x": np.zeros((4, 3)), "y": np.zeros(4, int), "X_test": np.zeros((2, 3)),
      "Y_test": np.zeros(2, int)}, "npz"),  # wrong case: once silently dropped
])
def test_npz_bad_arrays_name_the_field(tmp_path, arrays, field):
    np.savez(tmp_path / "d.npz", **arrays)
    one_line_config_error("npz", tmp_path / "d.npz", match=f"^{field}: ")


def test_npz_missing_or_unreadable(tmp_path):
    one_line_config_error("npz", None)
    one_line_config_error("npz", tmp_path)  # no data.npz inside
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    one_line_config_error("npz", tmp_path / "bad.npz")


# --- imagefolder ----------------------------------------------------------------------------

COLOURS = {"blue": (0, 0, 255), "red": (255, 0, 0)}


def write_images(folder, per_class, size=(10, 14)):
    from PIL import Image

    for cls, rgb in COLOURS.items():
        (folder / cls).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", size, rgb).save(folder / cls / f"{i}.png")


@pytest.mark.parametrize("held_out", ["test", "val", None])
def test_imagefolder_loads_resized_rgb(tmp_path, held_out):
    write_images(tmp_path / "train", 5)
    if held_out:
        write_images(tmp_path / held_out, 1)
    raw = load_dataset("imagefolder", tmp_path)
    assert raw.x_train.shape[1:] == (3, 32, 32) and raw.classes == ["blue", "red"]
    assert len(raw.y_train) + len(raw.y_test) == (12 if held_out else 10)
    red = raw.x_train[raw.y_train == 1]
    assert torch.allclose(red[:, 0], torch.ones(1)) and torch.allclose(red[:, 2], torch.zeros(1))


def test_imagefolder_errors(tmp_path):
    one_line_config_error("imagefolder", None)
    one_line_config_error("imagefolder", tmp_path)  # no train/
    write_images(tmp_path / "train", 1)
    write_images(tmp_path / "test", 1)
    from PIL import Image

    (tmp_path / "test" / "green").mkdir()
    Image.new("RGB", (4, 4), (0, 255, 0)).save(tmp_path / "test" / "green" / "0.png")
    assert "classes" in one_line_config_error("imagefolder", tmp_path)
