"""Atomic file writes and JSON-lines journals, so an interrupted run never leaves a torn file.

Files are created with the user's umask. Nothing is ever unpickled: torch files are read
with ``weights_only=True``, numpy files with ``allow_pickle=False``; a file that cannot be
read that way is a one-line :class:`ConfigError`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable
from io import BytesIO
from pathlib import Path
from typing import Any

import torch

from sampletune.errors import ConfigError

_REPAIR = "a file this program wrote; --restart discards the run"


def _atomic_replace(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; plain files follow the umask
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    _atomic_replace(Path(path), lambda fh: fh.write(data))


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same folder, then rename)."""
    write_bytes(path, text.encode())


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def read_json(path: str | os.PathLike, field: str = "out", allowed: str = _REPAIR) -> Any:
    """The JSON value in ``path``; an unreadable file (or one nested too deeply to decode)
    is a :class:`ConfigError` on ``field``, ``allowed`` saying what is expected."""
    try:
        return json.loads(Path(path).read_bytes().decode())
    except (OSError, ValueError, RecursionError) as err:
        raise ConfigError(field, f"{path} is not readable JSON ({describe_error(err)})",
                          allowed) from None


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save`` atomically. The bytes are made in memory first: torch's zip writer turns
    a Ctrl-C that lands in a Python ``write`` callback into a ``RuntimeError``, so writing
    straight to the file made an interrupt look like a crash."""
    buffer = BytesIO()
    try:
        torch.save(obj, buffer)
    except RuntimeError as err:  # the zip writer's cleanup after an interrupt it swallowed
        if isinstance(err.__context__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        raise
    write_bytes(path, buffer.getbuffer())


def save_npz(path: str | os.PathLike, **arrays) -> None:
    """``numpy.savez_compressed`` atomically."""
    import numpy as np

    _atomic_replace(Path(path), lambda fh: np.savez_compressed(fh, **arrays))


def save_npy(path: str | os.PathLike, array) -> None:
    """``numpy.save`` atomically."""
    import numpy as np

    _atomic_replace(Path(path), lambda fh: np.save(fh, array))


def load_torch(path: str | os.PathLike, field: str, map_location: str | torch.device = "cpu",
               allowed: str = _REPAIR) -> Any:
    """``torch.load`` with ``weights_only=True`` (tensors and plain containers, never a
    pickled object); an unreadable or foreign file is a :class:`ConfigError` on ``field``,
    ``allowed`` saying what is expected (default: a run directory's own file)."""
    import warnings

    try:
        with warnings.catch_warnings():  # torch warns before it refuses a pickled object
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many kinds for a bad file; all mean "unreadable"
        raise ConfigError(field, f"{path} is not a readable torch file of tensors "
                          f"({_torch_reason(err)})", allowed) from None


def _torch_reason(err: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, without torch's advice to load
    it unsafely."""
    text = str(err)
    if "Weights only load failed" not in text:
        return describe_error(err)
    found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    return (f"it holds a pickled object ({found.group(1)}), which is never loaded" if found
            else "not a torch file of tensors and plain containers")


def load_numpy(path: str | os.PathLike, field: str,
               allowed: str = ".npy/.npz without pickled objects") -> Any:
    """``numpy.load`` without pickles (an ``.npz`` comes back as a dict of arrays); an
    unreadable file is a :class:`ConfigError` on ``field`` saying what is ``allowed``."""
    import numpy as np

    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                return dict(loaded)
        return loaded
    except Exception as err:  # numpy raises many kinds for a bad file
        reason = describe_error(err)
        if "pickle" in str(err):  # also what numpy says of a file that is not .npy or .npz
            with open(path, "rb") as fh:
                numpy_file = fh.read(6).startswith((b"\x93NUMPY", b"PK\x03\x04"))
            reason = ("it holds pickled objects, which are never loaded" if numpy_file
                      else "not a .npy or .npz file")
        raise ConfigError(field, f"{path} is not a readable numpy file ({reason})",
                          allowed) from None


def describe_error(err: BaseException) -> str:
    """``Type: first line of the message``, short enough for a one-line error."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"[:200]


def digest(*parts: bytes) -> str:
    """16 hex characters of the SHA-1 of ``parts`` concatenated: the short fingerprints
    that run directories and sampler files record (split labels, weights, features)."""
    h = hashlib.sha1()
    for part in parts:
        h.update(part)
    return h.hexdigest()[:16]


def append_jsonl(path: str | os.PathLike, record: dict, *, durable: bool = True) -> None:
    """Append one JSON record as a line. Written through to the OS, it survives a killed
    process; ``durable`` also fsyncs it (and every line before it), so finished work
    survives a power loss too. Lines appended without ``durable`` after the last durable
    one can be lost to a power loss, the same as if the process had been killed before
    writing them (a torn last line is cut on the next append)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _drop_torn_tail(path)
    with open(path, "a") as fh:
        fh.write(json.dumps(record, sort_keys=True, default=_jsonable) + "\n")
        fh.flush()
        if durable:
            os.fsync(fh.fileno())


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that a kill left without its newline, so the next record starts on
    a line of its own (the torn record was never complete, so nothing finished is lost)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        fh.truncate(fh.read().rfind(b"\n") + 1)


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> None:
    """Write all ``records`` as JSON lines, atomically (replaces the file)."""
    write_text(path, "".join(json.dumps(r, sort_keys=True, default=_jsonable) + "\n"
                             for r in records))


def read_jsonl(path: str | os.PathLike, key: str | None = None, *, sequential: bool = False,
               field: str = "out") -> list[dict]:
    """Read a journal of JSON records, one a line.

    A torn last line (no final newline: a kill mid-write) is left out; the next append cuts
    it. Anything else is refused with a :class:`ConfigError` on ``field`` naming the file
    and line, since later records would be appended after it and read in the wrong place:
    a line that is not a JSON object, a record without ``key`` or repeating an earlier
    ``key``, or (``sequential``) a ``key`` other than the record's position 0, 1, 2, ...
    """
    path = Path(path)
    if not path.exists():
        return []
    try:
        lines = path.read_bytes().decode().split("\n")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(field, f"{path} is not readable text ({describe_error(err)})",
                          _REPAIR) from None
    lines[-1] = ""  # after the final newline: empty, or a torn record
    records, seen = [], set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            record = None
        where = f"{path} line {number}"
        if not isinstance(record, dict):
            raise ConfigError(field, f"{where} is not a JSON record", _REPAIR)
        if key is not None:
            value = record.get(key)
            if not isinstance(value, int | str) or isinstance(value, bool) or value in seen:
                raise ConfigError(field, f"{where} has a missing or repeated {key!r}", _REPAIR)
            if sequential and value != len(records):
                raise ConfigError(field, f"{where} has {key} {value!r} where {len(records)} "
                                  "belongs", _REPAIR)
            seen.add(value)
        records.append(record)
    return records


def check_records(path: str | os.PathLike, records: list[dict], fields: dict[str, tuple],
                  field: str = "out", bounds: dict[str, tuple[float, float]] | None = None
                  ) -> None:
    """Refuse (one :class:`ConfigError`) a record whose ``fields`` are missing, not of the
    given types (``{"score": (float, int, type(None))}``), a NaN or infinite number, or
    outside ``bounds`` (``{"test_acc": (0, 1)}``): a journal may have been edited."""
    for number, record in enumerate(records):
        for name, kinds in fields.items():
            value = record.get(name, KeyError)
            lo, hi = (bounds or {}).get(name, (-math.inf, math.inf))
            if (not isinstance(value, kinds) or isinstance(value, bool)
                    or isinstance(value, float) and not math.isfinite(value)
                    or isinstance(value, int | float) and not lo <= value <= hi):
                raise ConfigError(field, f"{path} record {number} has a bad or missing "
                                  f"{name!r} ({short_repr(value)})", _REPAIR)


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to 40 characters for a one-line error; ``KeyError`` (the marker
    of a missing key) reads "missing"."""
    text = "missing" if value is KeyError else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Iterable):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
