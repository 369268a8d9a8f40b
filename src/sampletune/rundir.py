"""Run directories: each holds one experiment, and one process works in it at a time.

:func:`claim` takes an exclusive lock on ``DIR/.lock`` (non-blocking; held until
:func:`release` or the process exits) and compares the experiment's identity (every
setting that changes results, and the package version) with the one recorded in the
directory: the same identity resumes, another one is a one-line :class:`ConfigError`
naming the differing fields, and ``restart`` discards the directory's contents first. The
identity never holds the directory's own path, so a moved or copied directory resumes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from sampletune import __version__, io
from sampletune.errors import ConfigError

IDENTITY_FILE = "identity.json"
LOCK_FILE = ".lock"
_HELD: dict[str, IO] = {}  # real path of a claimed directory -> its open, locked lock file


def claim(out: str | Path, identity: dict, *, file: str = IDENTITY_FILE,
          restart: bool = False) -> Path:
    """Lock ``out`` and check ``identity`` against ``out/file`` (written on first use).

    Raises :class:`ConfigError` (field ``out``) when another process holds the directory,
    when it holds another experiment, or when it is not empty and holds no ``file`` (it is
    not a run directory: never deleted, even with ``restart``).
    """
    out = Path(out)
    identity = json.loads(json.dumps({"sampletune_version": __version__, **identity},
                                     sort_keys=True, default=str))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError("out", f"cannot create {out} ({err.strerror})",
                          "a writable folder") from None
    fresh = _lock(out)
    try:
        _check(out, identity, file, restart)
    except BaseException:
        if fresh:
            release(out)
        raise
    return out


def _check(out: Path, identity: dict, file: str, restart: bool) -> None:
    path = out / file
    others = [p for p in out.iterdir() if p.name != LOCK_FILE]
    if others and not path.exists():
        raise ConfigError("out", f"{out} is not empty and is not a run directory (no {file})",
                          "a new or empty --out")
    if restart:
        for p in others:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    if path.exists():
        recorded = io.read_json(path, "out")
        if not isinstance(recorded, dict):
            raise ConfigError("out", f"{path} is not a run identity", "--restart")
        differ = differences(recorded, identity)
        if differ:
            raise ConfigError("out", f"{out} holds another experiment (differs in: "
                              f"{', '.join(differ)})", "a new --out, the same settings to "
                              "resume, or --restart to discard it")
    else:
        io.write_json(path, identity)


def release(out: str | Path) -> None:
    """Unlock a directory :func:`claim` locked in this process (no-op otherwise)."""
    fh = _HELD.pop(os.path.realpath(out), None)
    if fh is not None:
        fh.close()


@contextlib.contextmanager
def held(out: str | Path | None, identity: dict, *, file: str = IDENTITY_FILE,
         restart: bool = False) -> Iterator[Path | None]:
    """:func:`claim` ``out`` for the ``with`` block (nothing when ``out`` is ``None``)."""
    if out is None:
        yield None
        return
    already = os.path.realpath(out) in _HELD
    claim(out, identity, file=file, restart=restart)
    try:
        yield Path(out)
    finally:
        if not already:
            release(out)


@contextlib.contextmanager
def locked(out: str | Path) -> Iterator[Path]:
    """Hold ``out``'s lock for the ``with`` block without checking an identity (for commands
    that add to another command's run directory, such as ``swift verify``)."""
    fresh = _lock(Path(out))
    try:
        yield Path(out)
    finally:
        if fresh:
            release(out)


def held_here(out: str | Path) -> bool:
    """Whether this process holds ``out``'s lock (:func:`claim` re-enters it silently)."""
    return os.path.realpath(out) in _HELD


def _lock(out: Path) -> bool:
    """Lock ``out`` unless this process holds it already; True if it was locked now."""
    key = os.path.realpath(out)
    if key in _HELD:
        return False
    try:  # never through a link: a run directory handed to us may point .lock anywhere
        fd = os.open(out / LOCK_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW,
                     0o666)
    except OSError as err:
        raise ConfigError("out", f"cannot create the lock {out / LOCK_FILE} "
                          f"({type(err).__name__}: {err.strerror})",
                          "a run directory whose .lock is a plain file") from None
    fh = os.fdopen(fd, "a")  # stays open: closing it releases the lock
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise ConfigError("out", f"{out} is in use by another sampletune process",
                          "wait for it to finish, or a new --out") from None
    _HELD[key] = fh
    return True


def differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted names of the fields where nested dicts ``a`` (recorded) and ``b`` differ. A
    field recorded as ``{}`` that ``b`` lacks is none: a setting removed since, which was
    always empty (``extra``)."""
    out = []
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if x == {} and k not in b:
            continue
        if isinstance(x, dict) and isinstance(y, dict):
            out += differences(x, y, f"{prefix}{k}.")
        elif x != y:
            out.append(f"{prefix}{k}")
    return out
