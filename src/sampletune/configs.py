"""Typed configuration parts: flags and YAML values checked against dataclass annotations.

A part is a frozen dataclass that validates itself in ``__post_init__`` with ``check``.
:func:`add_flags` makes one ``--field-name`` flag per field (its type from the annotation,
its help from the comment that documents the field); :func:`coerce` checks a YAML value
against the annotation. Every problem is a one-line :class:`ConfigError` naming the field.
Chosen over pydantic, jsonargparse and tyro by ``benchmarks/results/config_choice.md``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import io
import math
import re
import textwrap
import tokenize
import types
import typing
from typing import Any

from sampletune.errors import check


def finite_float(text: str) -> float:
    """argparse type: a finite float (``nan``, ``inf`` and overflowing ``1e999`` refused)."""
    try:  # ASCII only: Python's float() also reads other scripts' digits and "1_0"
        if not text.isascii() or "_" in text:
            raise ValueError(text)
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


MAX_INT_DIGITS = 18  # |value| < 10**18 fits int64; each field has its own, tighter range


def bounded_int(text: str) -> int:
    """argparse type: a decimal integer of at most 18 digits (fields check their ranges)."""
    if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", text):  # int() also reads "١" and "1_0"
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    value = int(text)
    if abs(value) >= 10**MAX_INT_DIGITS:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range")
    return value


def mapping(text: str) -> dict:
    """argparse type: a YAML mapping written inline, e.g. ``'{n_init: 5}'``."""
    import yaml

    try:
        value = safe_load_yaml(text)
    except (yaml.YAMLError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{text!r} is not a mapping such as '{{key: 1}}'")
    return value


@functools.cache
def hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of dataclass ``cls``'s fields."""
    return typing.get_type_hints(cls)


def field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); any other annotation -> (it, False)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def coerce(name: str, value: Any, annotation: Any) -> Any:
    """``value`` (from YAML) checked against ``annotation``: ``bool``, ``int``, ``float``,
    ``str``, ``dict``, ``list[X]``/``tuple[X, ...]`` and ``X | None``. Ints are accepted for
    floats, lists for tuples, one string for a list of strings, and strings that spell a
    number for floats (PyYAML reads ``1e-3`` as a string); floats must be finite."""
    tp, optional = _unwrap(annotation)
    if value is None:
        check(optional, name, "must be set")
        return None
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        if isinstance(value, str) and typing.get_args(tp)[0] is str:
            value = [value]  # one name, as the flag takes it (a number stays ambiguous)
        check(isinstance(value, list | tuple), name, f"{value!r} is not a list")
        return origin(coerce(name, v, typing.get_args(tp)[0]) for v in value)
    if tp is dict or origin is dict:
        check(isinstance(value, dict) and all(isinstance(k, str) for k in value), name,
              f"{value!r} is not a mapping of names to values")
        return dict(value)
    if tp is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        check(isinstance(value, int | float) and not isinstance(value, bool), name,
              f"{value!r} is not a number")
        try:
            value = float(value)
        except OverflowError:  # an int beyond float range
            value = math.inf
        check(math.isfinite(value), name, f"{value!r} is not a finite number")
        return value
    nouns = {bool: "true/false", int: "an integer", str: "a string"}
    if tp not in nouns:
        raise TypeError(f"{name}: no coercion for {annotation!r}")
    check(isinstance(value, tp) and not (tp is int and isinstance(value, bool)), name,
          f"{value!r} is not {nouns[tp]}")
    return value


def build(cls: type, values: dict[str, Any], base: Any = None) -> Any:
    """A ``cls`` part from ``values`` (field -> value, coerced by annotation) over ``base``
    (an instance whose other fields are kept) or the class defaults."""
    kinds = hints(cls)
    kw = {k: coerce(k, v, kinds[k]) for k, v in values.items()}
    return dataclasses.replace(base, **kw) if base is not None else cls(**kw)


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Each field's documentation: the comment lines right above it and the comment after
    it in ``cls``'s source (``{}`` where the source cannot be read)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and not re.match(r"#\s*(noqa|type:)", tok.string):
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    lines = source.splitlines()
    docs = {}
    for node in ast.parse(source).body[0].body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above, row = [], node.lineno - 1
        while row >= 1 and lines[row - 1].strip().startswith("#") and row in comments:
            above.insert(0, comments[row])
            row -= 1
        text = " ".join([*above, comments.get(node.end_lineno, "")]).strip()
        if text:
            docs[node.target.id] = text
    return docs


def add_flags(group, part: Any, *, skip: tuple[str, ...] = (), **options: dict) -> None:
    """One ``--field-name`` flag per field of the dataclass instance ``part`` (less
    ``skip``), defaulting to ``None`` (not given; the part's value shows in the help).

    ``bool`` fields get ``--name/--no-name``, ``int``/``float`` ones parse with
    :func:`bounded_int`/:func:`finite_float`, lists and tuples take one or more values,
    ``dict`` ones an inline YAML mapping. ``options[field]`` adds keywords of
    ``add_argument`` (``choices``, ``help``, ...); the help ends with the part's value
    unless it is empty or false."""
    cls = type(part)
    docs = field_docs(cls)
    scalar = {int: bounded_int, float: finite_float}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp, _ = _unwrap(hints(cls)[f.name])
        kw: dict[str, Any] = {}
        if tp is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(tp) in (list, tuple):
            kw["nargs"] = "+"
            kw["type"] = scalar.get(typing.get_args(tp)[0])
        elif tp is dict or typing.get_origin(tp) is dict:
            kw["type"], kw["metavar"] = mapping, "'{KEY: VALUE, ...}'"
        else:
            kw["type"] = scalar.get(tp)
        kw.update(options.get(f.name, {}))
        default = getattr(part, f.name)
        text = kw.pop("help", docs.get(f.name, "")).replace("%", "%%")
        if default not in (None, False, {}) and "(default" not in text:
            shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
            text = f"{text} (default: {shown})".strip()
        kw["help"] = text
        group.add_argument("--" + f.name.replace("_", "-"), default=None, **kw)


def given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The flags of ``cls``'s fields that were given on the command line."""
    return {k: v for k in field_names(cls) if (v := getattr(args, k, None)) is not None}


def route(values: dict, sections: dict[str, tuple[str, ...]]) -> dict[str, dict[str, Any]]:
    """Split a configuration mapping into one mapping per section (section -> its field
    names; ``""`` for fields of no section). A key is a field of one section (the flat form
    every earlier version wrote), or a section's name holding a mapping of its fields
    (``train: {lr: 0.1}``); ``-`` may stand for ``_``. Unknown keys are a
    :class:`ConfigError` naming them."""
    owner: dict[str, str] = {}
    for section, names in sections.items():
        for name in names:
            if owner.setdefault(name, section) != section:
                raise TypeError(f"field {name!r} is in sections {owner[name]!r} and {section!r}")
    out: dict[str, dict[str, Any]] = {s: {} for s in sections}
    allowed = ", ".join(sorted({*owner, *(s for s in sections if s)}))
    for key, value in values.items():
        check(isinstance(key, str) and re.fullmatch(r"[a-z_\-]+", key) is not None,
              "config", f"unknown field {key!r}", allowed)
        key = key.replace("-", "_")
        if key in sections and key not in owner:
            names = sections[key]
            check(isinstance(value, dict), key, f"{value!r} is not a mapping of its fields",
                  ", ".join(names))
            for sub, v in value.items():
                check(isinstance(sub, str) and re.fullmatch(r"[a-z_\-]+", sub) is not None,
                      key, f"unknown field {sub!r}", ", ".join(names))
                check(sub.replace("-", "_") in names, f"{key}.{sub}",
                      "unknown config field", ", ".join(names))
                _set_once(out[key], sub.replace("-", "_"), v)
            continue
        check(key in owner, key, "unknown config field", allowed)
        _set_once(out[owner[key]], key, value)
    return out


def _set_once(section: dict[str, Any], name: str, value: Any) -> None:
    """``section[name] = value``, refused if an earlier key of the mapping set it (flat and
    under its part, or spelled with ``-`` and ``_``): one of the two would be dropped."""
    check(name not in section, name, "is set twice in one configuration (flat and under its "
          "part, or spelled with both - and _)", "one value")
    section[name] = value


def safe_load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses a mapping with a repeated key (a one-line
    :class:`ConfigError`; plain YAML keeps the last value silently)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
        loader.flatten_mapping(node)
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) or key is None:
                check(key not in seen, str(key), "is set twice in one mapping", "one value")
                seen.add(key)
        return loader.construct_mapping(node, deep=deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
