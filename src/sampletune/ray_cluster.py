"""Starting or joining Ray, for the engines that run work on it (AutoSampling's population,
Swift's trials). ``ray`` is imported here, on first use, never at package import."""

from __future__ import annotations

import socket

from sampletune.errors import ConfigError, check


def import_ray(allowed: str):
    """The ``ray`` module; without it a :class:`ConfigError` on ``engine`` naming the
    ``allowed`` engines."""
    try:
        import ray
    except ImportError:
        raise ConfigError("engine", "ray is not installed; pip install 'sampletune[ray]' "
                          "or use another engine", allowed) from None
    return ray


PROBE_TIMEOUT_S = 5.0


def check_reachable(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Refuse a ``host:port`` or ``ray://host:port`` Ray address that accepts no TCP
    connection within ``timeout`` seconds (``ray.init`` would wait for it forever, deaf to
    Ctrl-C). ``auto``, ``local`` and other schemes are left to Ray."""
    if address in ("auto", "local") or "://" in address.removeprefix("ray://"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    forms = "auto, host:port or ray://host:port"
    check(bool(host) and port.isdigit() and 0 < int(port) < 65536, "ray_address",
          f"{address!r} is not host:port", forms)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise ConfigError("ray_address", f"cannot reach a Ray cluster at {address}: "
                          f"{err.strerror or err}", forms) from None


def start_ray(address: str | None, num_cpus: int, allowed: str):
    """``(ray, owns)``: join the cluster at ``address``, or start a local instance of
    ``num_cpus`` CPUs (no dashboard); ``owns`` is whether this call started Ray (then the
    caller shuts it down). Nothing is started when Ray is already running here."""
    ray = import_ray(allowed)
    owns = not ray.is_initialized()
    if owns:
        if address:
            check_reachable(address)
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    return ray, owns


def share(total: float, tasks: int) -> float:
    """Each of ``tasks`` concurrent tasks' share of ``total`` units (CPUs or GPUs), at most
    one: one each when there are enough, fractions otherwise, 0 when there are none."""
    return min(1.0, total / tasks) if total else 0.0
