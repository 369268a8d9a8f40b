"""The built-in data sets: each loader returns a :class:`RawDataset` of float32 inputs.

Images come back as ``(N, C, H, W)`` in [0, 1]; MNIST-1D as ``(N, 40)`` sequences.
Nothing is downloaded unless the user passes ``download=True`` (``--download``), and
MNIST-1D is generated offline from the ``mnist1d`` package's templates.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle
import random
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from sampletune.data.dataset import MAX_CLASSES, RawDataset, validate_raw
from sampletune.data.registry import register_dataset
from sampletune.errors import ConfigError, check
from sampletune.io import save_npz

CACHE_DIR = Path.home() / ".cache" / "sampletune"
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
HOLDOUT_FRACTION = 0.2  # test share carved from sources that ship no test split
HOLDOUT_SEED = 0
IMAGEFOLDER_SIZE = 32  # imagefolder images are resized to IMAGEFOLDER_SIZE x IMAGEFOLDER_SIZE


# ---------------------------------------------------------------------------------------------
# shared helpers


def stratified_holdout(
    y: np.ndarray, fraction: float = HOLDOUT_FRACTION, seed: int = HOLDOUT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split of ``y`` (N,) into sorted (train, test) index arrays.

    Each class gives ``round(fraction * n_class)`` of its examples to the test side.
    """
    rng = np.random.default_rng(seed)
    test = [
        rng.permutation(np.flatnonzero(y == c))[: round(fraction * int((y == c).sum()))]
        for c in np.unique(y)
    ]
    test_idx = np.sort(np.concatenate(test)) if test else np.zeros(0, np.int64)
    train_mask = np.ones(len(y), dtype=bool)
    train_mask[test_idx] = False
    return np.flatnonzero(train_mask), test_idx


def _unit_float(u8: np.ndarray) -> Tensor:
    """uint8 array (N, C, H, W) in [0, 255] -> contiguous float32 tensor in [0, 1]."""
    return torch.from_numpy(u8.astype(np.float32, order="C")).div_(255.0)


def _labels(y) -> Tensor:
    """Class ids from a data set's files, checked (:func:`_class_ids`), as int64."""
    return torch.from_numpy(_class_ids(np.asarray(y), "data_dir"))


def _raw(name: str, x_train, y_train, x_test, y_test, num_classes: int, **kw) -> RawDataset:
    return RawDataset(
        name, x_train, _labels(y_train), x_test, _labels(y_test), num_classes, **kw
    )


# ---------------------------------------------------------------------------------------------
# digits (scikit-learn, 8x8)


@register_dataset("digits", data_dir=None, download=False)
def load_digits(data_dir: Path | None, download: bool) -> RawDataset:
    """scikit-learn's 1,797 8x8 digits; a fixed stratified 20% holdout is the test split."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = torch.from_numpy((bunch.images / 16.0).astype(np.float32)).unsqueeze(1)  # (N,1,8,8)
    y = np.asarray(bunch.target, dtype=np.int64)
    tr, te = stratified_holdout(y)
    return _raw(
        "digits", x[tr], y[tr], x[te], y[te], 10, kind="image", hflip=False,
        classes=[str(c) for c in range(10)],
    )


# ---------------------------------------------------------------------------------------------
# MNIST-1D (generated offline, cached)


@register_dataset("mnist1d", data_dir="folder", download=False)
def load_mnist1d(data_dir: Path | None, download: bool) -> RawDataset:
    """MNIST-1D (Greydanus 2020): 4,000 train / 1,000 test length-40 sequences, 10 classes.

    Generated from the package's templates with its default arguments (seed 42), never
    downloaded; the arrays are cached as ``mnist1d-<hash>.npz`` under ``data_dir`` (or
    ``~/.cache/sampletune``) so later loads skip the ~1 s generation.
    """
    import mnist1d.data

    args = mnist1d.data.get_dataset_args()
    key = {k: v for k, v in vars(args).items() if k != "url"}
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    path = (data_dir or CACHE_DIR) / f"mnist1d-{digest}.npz"
    if not path.exists():
        arrays = _generate_mnist1d(args)
        try:
            save_npz(path, **arrays)
        except OSError as err:
            raise ConfigError("data_dir", f"cannot write the mnist1d cache {path}: {err}",
                              "a writable folder (mnist1d caches its generated arrays there)"
                              ) from None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("x", "y", "x_test", "y_test")}
    except Exception as err:  # a corrupt cache: zipfile, zlib, numpy header errors
        raise ConfigError("data_dir", f"cannot read the mnist1d cache {path} "
                          f"({type(err).__name__}: {err}); delete it to regenerate") from None
    return _raw(
        "mnist1d", torch.from_numpy(arrays["x"]), arrays["y"],
        torch.from_numpy(arrays["x_test"]), arrays["y_test"], 10, kind="sequence",
        hflip=False, classes=[str(c) for c in range(10)],
    )


def _generate_mnist1d(args) -> dict[str, np.ndarray]:
    """Run ``mnist1d.data.make_dataset``; it reseeds the global RNGs, so restore them after."""
    import mnist1d.data

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = mnist1d.data.make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {
        "x": d["x"].astype(np.float32), "y": d["y"].astype(np.int64),
        "x_test": d["x_test"].astype(np.float32), "y_test": d["y_test"].astype(np.int64),
    }


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST (IDX files)

_FASHION_FILES = {
    "x": "train-images-idx3-ubyte", "y": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (optionally gzipped) into a uint8 array."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise ConfigError("data_dir", f"cannot read {path} ({type(err).__name__}: {err})",
                          "the data set's own IDX files") from None
    check(
        len(data) >= 4 and data[:3] == b"\x00\x00\x08" and len(data) >= 4 + 4 * data[3],
        "data_dir", f"{path} is not an IDX file of unsigned bytes",
    )
    ndim = data[3]
    dims = tuple(int(d) for d in np.frombuffer(data, ">i4", count=ndim, offset=4))
    check(all(d >= 0 for d in dims), "data_dir", f"{path} has negative dimensions {dims}")
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    check(body.size == int(np.prod(dims)), "data_dir", f"{path} is truncated: header says {dims}")
    return body.reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


@register_dataset("fashion-mnist", data_dir="folder", download=True)
def load_fashion_mnist(data_dir: Path | None, download: bool) -> RawDataset:
    """Fashion-MNIST from its four IDX files (raw or .gz): 60,000 / 10,000 28x28 images.

    Looked for in ``data_dir`` and ``data_dir/FashionMNIST/raw`` (torchvision's layout), or,
    without ``data_dir``, in the Debian package's folder. ``download`` fetches them with
    torchvision into ``data_dir`` (or ``~/.cache/sampletune``) when they are not found.
    """
    from torchvision.datasets import FashionMNIST

    roots = [data_dir, data_dir / "FashionMNIST" / "raw"] if data_dir else [
        FASHION_MNIST_SYSTEM_DIR]
    paths = _fashion_paths(roots)
    if paths is None and download:
        root = data_dir or CACHE_DIR
        try:
            FashionMNIST(str(root), download=True)
        except Exception as err:  # no network, a refused or corrupted download
            raise ConfigError("download", f"cannot download Fashion-MNIST into {root}: {err}",
                              "a machine with internet, or the IDX files in --data-dir"
                              ) from None
        paths = _fashion_paths([root / "FashionMNIST" / "raw"])
    if paths is None:
        raise ConfigError(
            "data_dir",
            f"Fashion-MNIST IDX files ({', '.join(_FASHION_FILES.values())}, raw or .gz) not "
            f"found in {', '.join(map(str, roots))}; `apt-get install dataset-fashion-mnist`, "
            "or pass --data-dir with the IDX files, or add --download",
        )
    a = {k: read_idx(p) for k, p in paths.items()}
    for k in ("x", "x_test"):
        y = "y" + k[1:]
        check(a[k].ndim == 3 and a[k].shape[0] == a[y].size, "data_dir",
              f"{paths[k].name} holds {a[k].shape} images for {a[y].size} labels")
    return _raw(
        "fashion-mnist", _unit_float(a["x"][:, None]), a["y"], _unit_float(a["x_test"][:, None]),
        a["y_test"], 10, kind="image", hflip=True, classes=list(FashionMNIST.classes),
    )


def _fashion_paths(roots: list[Path]) -> dict[str, Path] | None:
    for root in roots:
        found = {k: _find_idx(root, stem) for k, stem in _FASHION_FILES.items()}
        if all(found.values()):
            return found
    return None


# ---------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100 / SVHN (torchvision)


# torchvision hashes every file on each load, which costs seconds on the real files and
# rejects the small stand-in files tests write in the same formats. CIFAR's files are read
# here with an unpickler that allows only arrays and plain values; SVHN's mixin checks that
# its .mat files are present (scipy parses them; nothing is unpickled). Downloads keep
# torchvision's md5 check of what was downloaded.


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays, and nothing else: a crafted
    file that names any other callable is refused instead of run (CIFAR's python format is
    pickled, and its files come from the user's data folder)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
               ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not an array or plain value")
        return super().find_class(module, name)


def _load_arrays_pickle(path: Path, field: str) -> dict:
    """A CIFAR python-format file (a pickled dict of arrays and lists), safely."""
    try:
        with open(path, "rb") as fh:
            obj = _ArraysOnlyUnpickler(fh, encoding="latin1").load()
    except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            pickle.UnpicklingError) as err:
        raise ConfigError(field, f"cannot read {path}: {type(err).__name__}: {err}",
                          "the data set's own files") from None
    check(isinstance(obj, dict), field, f"{path} does not hold a dict of arrays")
    return obj


class _PresenceCheckedSVHN:
    """Mixin for torchvision's SVHN: presence instead of an md5 check."""

    def _check_integrity(self) -> bool:
        return (Path(self.root) / self.filename).is_file()


def _torchvision_split(name: str, make, data_dir: Path | None, download: bool):
    """``make(root, download)`` one torchvision split, turning a miss into a ConfigError."""
    if data_dir is None and not download:
        raise ConfigError(
            "data_dir", f"{name} needs --data-dir (the folder torchvision uses for {name}); "
            "add --download to fetch it there",
        )
    root = data_dir or CACHE_DIR / name
    try:
        return make(str(root), download)
    except Exception as err:  # not found or corrupted, a download, a .mat file scipy rejects
        hint = "" if download else "; add --download to fetch it"
        raise ConfigError("data_dir", f"cannot load {name} from {root}: {err}{hint}") from None


def _cifar(name: str, base: type, num_classes: int, data_dir: Path | None, download: bool):
    """torchvision's CIFAR file layout (``base``'s ``base_folder``, ``train_list``,
    ``test_list``, ``meta``) read without running pickle on the user's files; ``--download``
    uses torchvision's md5-checked download."""
    if download:  # torchvision fetches and md5-checks the archive
        _torchvision_split(name, lambda r, d: base(r, train=True, download=d), data_dir, True)
    elif data_dir is None:
        raise ConfigError("data_dir", f"{name} needs --data-dir (the folder torchvision uses "
                          f"for {name}); add --download to fetch it there")
    folder = Path(data_dir or CACHE_DIR / name) / base.base_folder
    names = [n for n, _ in base.train_list + base.test_list] + [base.meta["filename"]]
    missing = [n for n in names if not (folder / n).is_file()]
    check(not missing, "data_dir", f"cannot load {name} from {folder.parent}: missing "
          f"{', '.join(missing)}; add --download to fetch it")

    def split(files) -> tuple[np.ndarray, list]:
        xs, ys = [], []
        for fname, _ in files:
            entry = _load_arrays_pickle(folder / fname, "data_dir")
            labels = entry.get("labels", entry.get("fine_labels"))
            check("data" in entry and labels is not None, "data_dir",
                  f"{folder / fname} has no data and labels")
            xs.append(_cifar_pixels(entry["data"], folder / fname))
            ys.extend(labels)
        return np.concatenate(xs), ys

    (xtr, ytr), (xte, yte) = split(base.train_list), split(base.test_list)
    meta = _load_arrays_pickle(folder / base.meta["filename"], "data_dir")
    check(base.meta["key"] in meta, "data_dir",
          f"{folder / base.meta['filename']} has no {base.meta['key']!r}")
    classes = meta[base.meta["key"]]
    return _raw(name, _unit_float(xtr), ytr, _unit_float(xte), yte, num_classes, kind="image",
                hflip=True, classes=list(classes))


def _cifar_pixels(data, path: Path) -> np.ndarray:
    """A CIFAR file's ``data`` as uint8 ``(n, 3, 32, 32)``, refused unless it holds integers
    in [0, 255] in rows of 3,072 (never wrapped or truncated by a cast)."""
    a = np.asarray(data)
    ok = a.dtype.kind in "iu" and a.size % (3 * 32 * 32) == 0
    check(ok and (a.size == 0 or 0 <= int(a.min()) <= int(a.max()) <= 255), "data_dir",
          f"{path}: data is not rows of 3,072 bytes (dtype {a.dtype}, shape {a.shape})",
          "CIFAR's own files: uint8 rows of 3 x 32 x 32")
    return a.astype(np.uint8).reshape(-1, 3, 32, 32)


@register_dataset("cifar10", data_dir="folder", download=True)
def load_cifar10(data_dir: Path | None, download: bool) -> RawDataset:
    """CIFAR-10 from ``data_dir/cifar-10-batches-py``: 50,000 / 10,000 32x32 RGB images."""
    from torchvision.datasets import CIFAR10

    return _cifar("cifar10", CIFAR10, 10, data_dir, download)


@register_dataset("cifar100", data_dir="folder", download=True)
def load_cifar100(data_dir: Path | None, download: bool) -> RawDataset:
    """CIFAR-100 (fine labels) from ``data_dir/cifar-100-python``."""
    from torchvision.datasets import CIFAR100

    return _cifar("cifar100", CIFAR100, 100, data_dir, download)


@register_dataset("svhn", data_dir="folder", download=True)
def load_svhn(data_dir: Path | None, download: bool) -> RawDataset:
    """SVHN train / test (``data_dir/{train,test}_32x32.mat``), digit 0 labelled 0; no flips."""
    from torchvision.datasets import SVHN

    cls = type("LocalSVHN", (_PresenceCheckedSVHN, SVHN), {})
    tr, te = (
        _torchvision_split("svhn", lambda r, d, s=s: cls(r, split=s, download=d), data_dir,
                           download)
        for s in ("train", "test")
    )
    return _raw(
        "svhn", _unit_float(tr.data), tr.labels, _unit_float(te.data), te.labels, 10,
        kind="image", hflip=False, classes=[str(c) for c in range(10)],
    )


# ---------------------------------------------------------------------------------------------
# a user's .npz


@register_dataset("npz", data_dir="any", download=False)
def load_npz(data_dir: Path | None, download: bool) -> RawDataset:
    """A user's arrays: ``data_dir`` is a .npz file (or a folder holding ``data.npz``).

    Arrays: ``x`` (N, ...) and ``y`` (N,) integer labels 0..C-1, optionally ``x_test`` /
    ``y_test`` (else a fixed stratified 20% holdout). ``x`` shaped (N, D) is a "vector",
    (N, C, L) a "sequence", (N, C, H, W) an "image"; uint8 inputs are scaled to [0, 1],
    others kept as float32. Horizontal flips are off (not known to be label-preserving).
    """
    check(data_dir is not None, "data_dir", "npz needs --data-dir: a .npz file with x and y")
    path = data_dir / "data.npz" if data_dir.is_dir() else data_dir
    check(path.is_file(), "data_dir", f"{path} does not exist (expected a .npz with x and y)")
    try:
        with open(path, "rb") as fh:
            check(fh.read(4) == b"PK\x03\x04", "data_dir",
                  f"{path} is not a .npz archive" + (" (it is empty)" if path.stat().st_size
                                                     == 0 else ""),
                  "a .npz written by numpy.savez with arrays x and y")
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ConfigError:
        raise
    except Exception as err:  # zipfile, zlib, numpy header errors: all mean a corrupt file
        raise ConfigError("data_dir", f"cannot read {path} as .npz: "
                          f"{type(err).__name__}: {err}") from None
    for k in ("x", "y"):
        check(k in arrays, f"npz.{k}", f"missing from {path}", "x, y, x_test, y_test")
    unknown = sorted(set(arrays) - {"x", "y", "x_test", "y_test"})
    check(not unknown, "npz", f"{path} holds arrays it would ignore: {', '.join(unknown)}",
          "x, y, x_test, y_test (names are case-sensitive)")
    check(("x_test" in arrays) == ("y_test" in arrays), "npz.x_test",
          "x_test and y_test must be given together")
    x, y = _npz_inputs(arrays["x"], "x"), _class_ids(arrays["y"], "npz.y")
    check(len(x) == len(y), "npz.y", f"has {len(y)} labels for {len(x)} inputs in x")
    # The class count comes from the labels: bound it by the rows before anything loops
    # over classes (a label of 10**7 once meant minutes in the noise code).
    top = int(y.max())
    check(top < min(len(y), MAX_CLASSES), "npz.y", f"has label {top}, which makes {top + 1} "
          f"classes for {len(y)} training rows", f"class ids 0..C-1 with C <= min(rows, "
          f"{MAX_CLASSES})")
    if "x_test" in arrays:
        xt, yt = _npz_inputs(arrays["x_test"], "x_test"), _class_ids(arrays["y_test"], "npz.y_test")
        check(len(xt) == len(yt), "npz.y_test", f"has {len(yt)} labels for {len(xt)} inputs")
        check(xt.shape[1:] == x.shape[1:], "npz.x_test",
              f"examples shaped {xt.shape[1:]} but x's are {x.shape[1:]}")
        check(int(yt.max(initial=0)) <= top, "npz.y_test",
              f"has label {int(yt.max())}, a class absent from training (labels 0..{top})",
              f"0..{top}")
    else:
        tr, te = stratified_holdout(y)
        x, y, xt, yt = x[tr], y[tr], x[te], y[te]
    num_classes = top + 1
    kind = {2: "vector", 3: "sequence", 4: "image"}[x.ndim]
    raw = _raw(
        "npz", torch.from_numpy(x), y, torch.from_numpy(xt), yt, num_classes, kind=kind,
        hflip=False, classes=[str(c) for c in range(num_classes)],
    )
    return validate_raw(raw, "npz")


def _npz_inputs(x: np.ndarray, key: str) -> np.ndarray:
    """Validate inputs (N, ...) of 2-4 dims; uint8 -> [0, 1], any real dtype -> float32."""
    check(x.ndim in (2, 3, 4), f"npz.{key}", f"has shape {x.shape}",
          "(N, D), (N, C, L) or (N, C, H, W)")
    check(x.dtype.kind in "uif", f"npz.{key}", f"has dtype {x.dtype}", "integer or float")
    check(all(d >= 1 for d in x.shape[1:]), f"npz.{key}", f"has empty examples {x.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        out = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    check(bool(np.isfinite(out).all()), f"npz.{key}", "contains NaN or infinite values "
          "(or values beyond float32)", "finite numbers")
    return np.ascontiguousarray(out)


def _class_ids(y: np.ndarray, field: str) -> np.ndarray:
    """Validate labels: 1-D class ids 0..C-1, integers or floats with integral values (never
    cast: a fractional label is refused, not truncated); int64 ``(N,)``."""
    check(y.ndim == 1, field, f"labels of shape {y.shape}", "(N,)")
    check(len(y) > 0, field, "holds no labels")
    check(y.dtype.kind in "iuf", field, f"labels of dtype {y.dtype}", "integer class ids")
    if y.dtype.kind == "f":
        check(bool(np.isfinite(y).all()) and bool((y == np.round(y)).all()), field,
              "holds non-integral labels", "integer class ids 0..C-1")
    check(float(y.min()) >= 0, field, f"has label {y.min()} < 0", "0..C-1")
    check(float(y.max()) < MAX_CLASSES, field, f"has label {y.max()}",
          f"class ids below {MAX_CLASSES}")
    return y.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# an image folder


@register_dataset("imagefolder", data_dir="folder", download=False)
def load_imagefolder(data_dir: Path | None, download: bool) -> RawDataset:
    """``data_dir/train/<class>/*`` and ``data_dir/test/<class>/*`` (or ``val/``) images.

    Every image is loaded into memory as RGB resized to ``IMAGEFOLDER_SIZE`` squared
    (32x32): meant for small sets. Without a test / val folder a fixed stratified 20% of
    train is held out.
    """
    check(data_dir is not None, "data_dir", "imagefolder needs --data-dir with train/<class>/")
    return load_image_folder(data_dir, IMAGEFOLDER_SIZE)


def load_image_folder(root: Path, size: int) -> RawDataset:
    """Load an ImageFolder tree under ``root`` into (N, 3, size, size) float tensors."""
    check((root / "train").is_dir(), "data_dir", f"{root / 'train'} is not a folder",
          "data_dir/train/<class>/<image>")
    x, y, classes = _read_image_folder(root / "train", size)
    held = next((root / s for s in ("test", "val") if (root / s).is_dir()), None)
    if held is None:
        tr, te = stratified_holdout(y.numpy())
        x, y, xt, yt = x[tr], y[tr], x[te], y[te]
    else:
        xt, yt, test_classes = _read_image_folder(held, size)
        check(test_classes == classes, "data_dir",
              f"{held} has classes {test_classes} but train has {classes}")
    return RawDataset("imagefolder", x, y, xt, yt, len(classes), kind="image", hflip=True,
                      classes=classes)


def _read_image_folder(folder: Path, size: int) -> tuple[Tensor, Tensor, list[str]]:
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

    tf = v2.Compose([v2.ToImage(), v2.Resize((size, size), antialias=True),
                     v2.ToDtype(torch.float32, scale=True)])
    try:
        ds = ImageFolder(str(folder), transform=tf)
    except (FileNotFoundError, RuntimeError) as err:
        raise ConfigError("data_dir", f"no images in {folder}: {err}") from None
    items = []
    for i in range(len(ds)):
        try:
            items.append(ds[i])
        except Exception as err:  # PIL raises many types for a file that is not an image
            raise ConfigError("data_dir", f"cannot read image {ds.samples[i][0]}: "
                              f"{type(err).__name__}: {err}") from None
    xs, ys = zip(*items, strict=True)
    return torch.stack(xs), torch.tensor(ys, dtype=torch.int64), list(ds.classes)
