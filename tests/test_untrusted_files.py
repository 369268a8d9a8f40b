"""Every file the program reads back may have been crafted or damaged: nothing in it is ever
executed, and a bad file is one line `sampletune: error: FIELD: ...` with exit status 2."""

import json
import pathlib
import pickle

import numpy as np
import pytest
import torch

from sampletune.cli import main
from sampletune.errors import ConfigError
from sampletune.features import FeatureKey, load_features, save_features
from sampletune.swift.params import from_cube
from sampletune.swift.sampler_file import SamplerSpec, save_sampler

TRAIN = ["--threads", "1", "train", "--dataset", "digits", "--train-subset", "300",
         "--model", "mlp", "--epochs", "1", "--lr", "0.05", "--quiet"]
N_TRAIN = 270  # 300 minus 10% validation
# the files these tests craft record no split; the warning that says so is not under test
pytestmark = pytest.mark.filterwarnings("ignore:.*records no training split")


class Payload:
    """Unpickling this creates the marker file: proof that a file's code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def _fails(argv, field, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sampletune: error: {field}: "), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _train_run(tmp_path, name="run", *flags):
    out = tmp_path / name
    assert main([*TRAIN, *flags, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("method", [[], ["--method", "p-sgd", "--budget", "0.5"]])
def test_crafted_training_checkpoint_is_refused_not_run(tmp_path, capsys, method):
    marker = tmp_path / "pwned"
    out = _train_run(tmp_path, "run", *method)
    torch.save({"trainer": Payload(marker)}, out / "checkpoint.pt")
    _fails([*TRAIN, *method, "--out", str(out)], "checkpoint", capsys)
    assert not marker.exists()


def test_crafted_autosampling_checkpoint_is_refused_not_run(tmp_path, capsys):
    marker = tmp_path / "pwned"
    flags = ["--threads", "1", "autosampling", "search", "--dataset", "digits",
             "--train-subset", "300", "--epochs", "1", "--batch-size", "64", "--workers", "2",
             "--interval", "2", "--warmup", "0", "--quiet", "--out", str(tmp_path / "as")]
    assert main(flags) == 0
    torch.save({"population": Payload(marker)}, tmp_path / "as" / "checkpoint.pt")
    _fails(flags, "checkpoint", capsys)
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".pt", ".npy"])
def test_crafted_weights_files_are_refused_not_run(tmp_path, capsys, suffix):
    marker, path = tmp_path / "pwned", tmp_path / f"w{suffix}"
    if suffix == ".pt":
        torch.save(Payload(marker), path)
    else:
        np.save(path, np.array([Payload(marker)] * N_TRAIN, dtype=object), allow_pickle=True)
    err = _fails([*TRAIN, "--sampler", "weights", "--weights", str(path)], "weights", capsys)
    assert not marker.exists()
    assert "pickled object" in err  # and none of torch's or numpy's advice to load it unsafely
    assert "weights_only" not in err and "allow_pickle" not in err and "trust" not in err, err
    assert ".npz" not in err  # what --weights takes: .npy or .pt


def _sampler_file(folder, feature_file) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    feats = {"loss": torch.rand(N_TRAIN, dtype=torch.float64),
             "renormed_entropy": torch.rand(N_TRAIN, dtype=torch.float64),
             "grad_norm": torch.rand(N_TRAIN, dtype=torch.float64)}
    real = save_features(folder / "features.npz", feats, FeatureKey("d", "train", 0, "mlp"))
    spec = SamplerSpec(from_cube(torch.full((10,), 0.5), 4, 2), ("loss", "renormed_entropy"),
                       "cgf", str(real), N_TRAIN)
    path = save_sampler(folder / "sampler.json", spec)
    d = json.loads(path.read_text())
    d["feature_file"] = feature_file
    path.write_text(json.dumps(d))
    return path


@pytest.mark.parametrize("where", ["../evil.npz", "ABS", "sub/../../evil.npz", "evil.pt"])
def test_sampler_file_cannot_name_a_feature_file_elsewhere(tmp_path, capsys, where):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.npz"
    np.savez(evil, n=np.array(N_TRAIN), feature_loss=np.array([Payload(marker)], dtype=object))
    sampler = _sampler_file(tmp_path / "s", str(evil) if where == "ABS" else where)
    torch.save(Payload(marker), tmp_path / "s" / "evil.pt")
    field = "feature_file" if where == "evil.pt" else "sampler_file"
    err = _fails([*TRAIN, "--sampler", "swift", "--weights", str(sampler)], field, capsys)
    assert err.count("(allowed:") == 1, err  # the refusal, not wrapped in a second message
    assert not marker.exists()


@pytest.mark.parametrize("field, value", [
    ("n", float("inf")), ("n", N_TRAIN + 0.5), ("n", str(N_TRAIN)), ("n", True),
    ("grad_feature", ["x"]), ("features", "loss"), ("features", {"loss": 1}),
    ("transform", 3), ("split", 7), ("score", "high"), ("refined", "yes"),
])
def test_sampler_file_fields_are_type_checked_not_cast(tmp_path, capsys, field, value):
    sampler = _sampler_file(tmp_path / "s", "features.npz")
    d = json.loads(sampler.read_text())
    d[field] = value
    sampler.write_text(json.dumps(d))
    _fails([*TRAIN, "--sampler", "swift", "--weights", str(sampler)], "sampler_file", capsys)


def test_json_nested_past_the_recursion_limit_is_one_line(tmp_path, capsys):
    sampler = _sampler_file(tmp_path / "s", "features.npz")
    sampler.write_text("[" * 100_000 + "]" * 100_000)
    _fails([*TRAIN, "--sampler", "swift", "--weights", str(sampler)], "sampler_file", capsys)
    out = _train_run(tmp_path)
    (out / "identity.json").write_text("{" + '"a":{' * 100_000 + "}" * 100_001)
    _fails([*TRAIN, "--out", str(out)], "out", capsys)


@pytest.mark.parametrize("tamper", ["history not a list", "negative epoch", "history lost",
                                    "elapsed NaN"])
def test_tampered_checkpoint_progress_is_refused(tmp_path, capsys, tamper):
    """A checkpoint whose progress does not add up is refused, not resumed into a run with
    lost, repeated or garbled epochs."""
    out = _train_run(tmp_path, "run", "--checkpoint-every", "0")
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    {"history not a list": lambda: state.update(history="abc"),
     "negative epoch": lambda: state.update(epoch=-5),
     "history lost": lambda: state.update(history=[]),
     "elapsed NaN": lambda: state.update(elapsed=float("nan"))}[tamper]()
    torch.save(state, out / "checkpoint.pt")
    _fails([*TRAIN, "--checkpoint-every", "0", "--out", str(out)], "checkpoint", capsys)


def test_crafted_features_inside_the_folder_are_refused_not_run(tmp_path, capsys):
    marker = tmp_path / "pwned"
    sampler = _sampler_file(tmp_path / "s", "features.npz")
    np.savez(tmp_path / "s" / "features.npz", n=np.array(N_TRAIN),
             feature_loss=np.array([Payload(marker)] * N_TRAIN, dtype=object))
    _fails([*TRAIN, "--sampler", "swift", "--weights", str(sampler)], "feature_file", capsys)
    assert not marker.exists()


@pytest.mark.parametrize("where", ["../evil.pt", "ABS", "evil.pt"])
def test_crop_sampling_feature_model_is_never_run_or_read_elsewhere(tmp_path, capsys, where):
    marker = tmp_path / "pwned"
    for folder in (tmp_path, tmp_path / "s"):
        folder.mkdir(exist_ok=True)
        torch.save(Payload(marker), folder / "evil.pt")
    sampler = _sampler_file(tmp_path / "s", "features.npz")
    d = json.loads(sampler.read_text())
    d["feature_model"] = str(tmp_path / "evil.pt") if where == "ABS" else where
    d["feature_arch"] = "mlp"
    sampler.write_text(json.dumps(d))
    field = "weights" if where == "evil.pt" else "sampler_file"
    err = _fails([*TRAIN, "--sampler", "swift", "--weights", str(sampler), "--crop-sampling",
                  "--augment", "standard"], field, capsys)
    assert err.count("(allowed:") == 1, err
    assert not marker.exists()


def test_crafted_schedule_files_are_refused_not_run(tmp_path, capsys):
    marker = tmp_path / "pwned"
    replay = ["--threads", "1", "autosampling", "replay", "--dataset", "digits",
              "--train-subset", "300", "--quiet", "--schedule"]
    np.savez(tmp_path / "obj.npz", indices=np.array([Payload(marker)], dtype=object))
    (tmp_path / "raw.npz").write_bytes(pickle.dumps(Payload(marker)))
    np.savez(tmp_path / "keys.npz", x=np.arange(3))
    for name in ("obj.npz", "raw.npz", "keys.npz"):
        _fails([*replay, str(tmp_path / name)], "schedule", capsys)
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["empty", "truncated", "text"])
def test_damaged_files_are_one_line_errors(tmp_path, capsys, damage):
    def spoil(path):
        data = path.read_bytes()
        path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2],
                          "text": b"{not json"}[damage])

    out = _train_run(tmp_path)
    spoil(out / "checkpoint.pt")
    _fails([*TRAIN, "--out", str(out)], "checkpoint", capsys)
    spoil(out / "identity.json")
    _fails([*TRAIN, "--out", str(out)], "out", capsys)

    sampler = _sampler_file(tmp_path / "s", "features.npz")
    spoil(tmp_path / "s" / "features.npz")
    _fails([*TRAIN, "--sampler", "swift", "--weights", str(sampler)], "feature_file", capsys)
    spoil(sampler)
    _fails([*TRAIN, "--sampler", "swift", "--weights", str(sampler)], "sampler_file", capsys)


def test_old_pt_feature_files_are_refused_with_a_reason(tmp_path):
    torch.save({"n": 3}, tmp_path / "f.pt")
    with pytest.raises(ConfigError, match=r"^feature_file: .*no longer read"):
        load_features(tmp_path / "f.pt")


def test_checkpoint_of_another_model_is_a_one_line_error(tiny_data, tmp_path):
    from sampletune.models import build_model
    from sampletune.samplers import UniformSampler
    from sampletune.train import TrainConfig, train

    cfg = TrainConfig(epochs=1, batch_size=32, lr=0.05)
    n = len(tiny_data.train)
    train(build_model("mlp", tiny_data.input_shape, 3), tiny_data, UniformSampler(n), cfg,
          run_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match=r"^checkpoint: .* does not fit this run"):
        train(build_model("smallcnn", tiny_data.input_shape, 3), tiny_data, UniformSampler(n),
              cfg, run_dir=tmp_path, progress=False)


def test_a_crafted_cifar_batch_is_not_unpickled(tmp_path):
    """CIFAR's python format is pickled: a file naming any callable but numpy's array
    constructors is refused in one line, and its payload never runs."""
    import pickle

    import numpy as np

    from sampletune.data import load_dataset
    from sampletune.errors import ConfigError

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rows = np.zeros((2, 3072), np.uint8)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (base / name).write_bytes(pickle.dumps({"data": rows, "labels": [0, 1]}))
    (base / "batches.meta").write_bytes(pickle.dumps({"label_names": ["a", "b"],
                                                      "x": Payload()}))
    with pytest.raises(ConfigError, match="data_dir") as err:
        load_dataset("cifar10", tmp_path)
    assert "builtins" in str(err.value) or "io.open" in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("text", ['[1, 2]', '{"run": 3}', '{"search": {}}'])
def test_swift_verify_refuses_a_foreign_settings_file(tmp_path, capsys, text):
    (tmp_path / "swift.json").write_text(text)
    (tmp_path / "sampler.json").write_text("{}")
    assert main(["swift", "verify", "--run", str(tmp_path), "--k", "2", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sampletune: error: run:")
