"""A searched sampler as a small JSON file, and its use as a ``WeightedSampler``.

The file holds the parameters ``z`` (eqs. 8-9), the feature names of G (eq. 6), the transform
T, the feature file it was fitted on (a path relative to the JSON file's folder, and inside
it: a sampler file can never make the program read a file elsewhere) and that file's number
of examples. Example index ``i`` of the feature file is training example ``i``. Files written
by ``swift search`` also name the model the features came from (its weights, inside the
folder too, and its architecture), which crop-level sampling needs to score new crops.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from sampletune.data.dataset import DataSplits
from sampletune.errors import ConfigError, check
from sampletune.features import load_features
from sampletune.io import read_json, short_repr, write_json
from sampletune.samplers import WeightedSampler, budget_samples
from sampletune.samplers.factory import register_sampler
from sampletune.swift.family import GRAD_FEATURE, SwiftFamily
from sampletune.swift.params import SwiftParams

FORMAT = "sampletune.swift/1"


@dataclass(frozen=True)
class SamplerSpec:
    """Everything needed to rebuild a Swift sampler's probabilities."""

    params: SwiftParams
    features: tuple[str, ...]
    transform: str
    feature_file: str  # as given (absolute once loaded); saved relative to the sampler file
    n: int  # training examples the features cover
    score: float | None = None  # validation accuracy the search gave it (approximated)
    grad_feature: str = GRAD_FEATURE  # what cgf weighs by
    split: str = ""  # fingerprint of the training split it was fitted on (Split.fingerprint)
    feature_model: str = ""  # state_dict of the model the features came from ("" if unknown)
    feature_arch: str = ""  # its architecture (a sampletune.models name)
    # The features are the loss of the refinement's Swift model (trained on a cut of the
    # data), not of a uniform pre-training: another architecture's own pre-training does
    # not reproduce them, so a transfer keeps them (experiments.swift_transfer).
    refined: bool = False

    def family(self, base: str | Path = ".") -> SwiftFamily:
        """The family on this spec's features (``feature_file`` resolved against ``base``)."""
        path = Path(base) / self.feature_file
        return SwiftFamily(load_features(path, n=self.n), self.features, self.transform,
                           self.grad_feature)

    def probabilities(self, base: str | Path = ".") -> Tensor:
        """Float64 ``(n,)`` sampling probabilities, summing to one."""
        return self.family(base).probabilities(self.params)


def save_sampler(path: str | Path, spec: SamplerSpec) -> Path:
    """Write ``spec`` as JSON (atomically), storing the feature file (and the feature model,
    if any) relative to ``path``'s folder, which must hold them."""
    path = Path(path)
    write_json(path, {
        "format": FORMAT, "params": spec.params.to_dict(), "features": list(spec.features),
        "transform": spec.transform,
        "feature_file": inside_folder(path, spec.feature_file, "feature_file"),
        "n": spec.n, "score": spec.score, "grad_feature": spec.grad_feature,
        "split": spec.split, "feature_arch": spec.feature_arch,
        "feature_model": spec.feature_model and inside_folder(path, spec.feature_model,
                                                              "feature_model"),
        "refined": spec.refined,
    })
    return path


def inside_folder(path: Path, file: str, field: str) -> str:
    """``file`` relative to ``path``'s folder, refused if it is not inside it."""
    rel = Path(os.path.relpath(Path(file).resolve(), path.resolve().parent))
    check(".." not in rel.parts, field, f"{file} is outside the folder of {path}",
          f"a {field.replace('_', ' ')} in the sampler file's folder or below")
    return rel.as_posix()


def load_sampler(path: str | Path) -> SamplerSpec:
    """Read a sampler file; its ``feature_file`` (relative, inside the sampler file's folder)
    is returned resolved to an absolute path. Every field is checked for its JSON type (a
    hand-edited file is a one-line :class:`ConfigError`, never a cast)."""
    path = Path(path)
    check(path.exists(), "sampler_file", f"{path} does not exist")
    d = read_json(path, "sampler_file", f"a {FORMAT} file written by swift search")
    check(isinstance(d, dict) and d.get("format") == FORMAT, "sampler_file",
          f"{path} is not a Swift sampler file", FORMAT)
    for name, kinds, default, allowed in _FIELDS:
        value = d.get(name, default)  # bool is an int in Python, not in a sampler file
        ok = isinstance(value, kinds) and (kinds is bool or not isinstance(value, bool))
        if name == "features":
            ok = ok and all(isinstance(f, str) for f in value)
        elif name == "n":
            ok = ok and value >= 1
        elif name == "score":
            ok = ok and (value is None or math.isfinite(value))
        check(ok, "sampler_file", f"{path}: {name} is {short_repr(value)}", allowed)
    feature_file = str(_contained(path, d.get("feature_file", KeyError), "feature_file"))
    model = d.get("feature_model", "")
    model = model if model == "" else str(_contained(path, model, "feature_model"))
    try:
        return SamplerSpec(SwiftParams.from_dict(d["params"]), tuple(d["features"]),
                           d["transform"], feature_file, d["n"], d.get("score"),
                           d.get("grad_feature", GRAD_FEATURE), d.get("split", ""), model,
                           d.get("feature_arch", ""), d.get("refined", False))
    except ConfigError as err:  # the parameters' own check, already naming what is allowed
        raise ConfigError("sampler_file", f"{path}: {err}") from None
    except (KeyError, TypeError, ValueError, OverflowError) as err:
        raise ConfigError("sampler_file", f"{path} is not a valid Swift sampler file "
                          f"(bad or missing {err})", FORMAT) from None


# (field, JSON types, default when absent (KeyError: required), what is allowed)
_FIELDS = (
    ("features", list, KeyError, "a list of feature names"),
    ("transform", str, KeyError, "a transform name"),
    ("n", int, KeyError, "a positive integer (training examples)"),
    ("score", (int, float, type(None)), None, "a finite number or null"),
    ("grad_feature", str, GRAD_FEATURE, "a feature name"),
    ("split", str, "", "a split fingerprint (text)"),
    ("feature_arch", str, "", "a model name"),
    ("refined", bool, False, "true or false"),
)


def _contained(path: Path, file, name: str) -> Path:
    """``file`` (the sampler file's field ``name``: the feature file or model) resolved
    against ``path``'s folder, refused if it is not a path or leaves the folder."""
    allowed = "a relative path inside the sampler file's folder"
    check(isinstance(file, str) and "\x00" not in file, "sampler_file",
          f"{path}: {name} is {short_repr(file)}", allowed)
    folder = path.resolve().parent
    resolved = (folder / file).resolve()
    check(not Path(file).is_absolute() and ".." not in Path(file).parts
          and resolved.is_relative_to(folder), "sampler_file",
          f"{path} names the {name.replace('_', ' ')} {file!r} outside its own folder", allowed)
    return resolved


def sampler_from_file(spec: SamplerSpec | str | Path, num_samples: int | None = None, *,
                      features: dict[str, Tensor] | None = None, seed: int = 0,
                      **kw) -> WeightedSampler:
    """A :class:`~sampletune.samplers.WeightedSampler` (a DataLoader ``Sampler[int]``) drawing
    by a sampler file's probabilities: ``num_samples`` indices per epoch (default: one per
    example), with replacement; extra keywords as ``WeightedSampler``'s.

    ``features`` ``{name: (M,)}`` applies the file's sampler to other features (e.g. of
    another model, or of new data: ``M`` need not be the file's ``n``) instead of the
    feature file it names; they must hold its features (and ``grad_norm`` for ``cgf``).
    """
    if not isinstance(spec, SamplerSpec):
        spec = load_sampler(spec)
    if features is None:
        probs = spec.probabilities()
    else:
        check(isinstance(features, dict), "features", f"is a {type(features).__name__}",
              "{name: (M,) tensor}")
        probs = SwiftFamily(features, spec.features, spec.transform,
                            spec.grad_feature).probabilities(spec.params)
    return WeightedSampler(probs, num_samples, seed=seed, **kw)


to_weighted_sampler = sampler_from_file  # its former name


def checked_spec(data: DataSplits, weights_path: str | Path | None) -> SamplerSpec:
    """The sampler file ``--weights`` names, checked to be fitted on ``data``'s training split."""
    n = len(data.train)
    check(weights_path is not None, "weights", "sampler 'swift' needs --weights sampler.json")
    spec = load_sampler(weights_path)
    check(spec.n == n and spec.split in ("", data.train.fingerprint()), "weights",
          f"the sampler file covers {spec.n} examples of another training split than this "
          f"one ({n})", "a sampler fitted with this data set, seed, noise and subset")
    if not spec.split:
        warnings.warn(f"{weights_path} records no training split (SwiftStudy.save_best "
                      "without split=): its weights are applied to this split's examples "
                      "by position", stacklevel=1)  # one location: shown once a process
    return spec


@register_sampler("swift")
def _swift(data: DataSplits, *, budget: float, seed: int,
           weights_path: str | Path | None) -> WeightedSampler:
    """``--sampler swift --weights sampler.json``: a Swift Sampler file from ``swift search``."""
    spec = checked_spec(data, weights_path)
    return WeightedSampler(spec.probabilities(), budget_samples(len(data.train), budget),
                           seed=seed)
