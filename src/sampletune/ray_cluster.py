"""Starting or joining Ray, for the engines that run work on it (AutoSampling's population,
Swift's trials). ``ray`` is imported here, on first use, never at package import."""

from __future__ import annotations

from sampletune.errors import ConfigError


def import_ray(allowed: str):
    """The ``ray`` module; without it a :class:`ConfigError` on ``engine`` naming the
    ``allowed`` engines."""
    try:
        import ray
    except ImportError:
        raise ConfigError("engine", "ray is not installed; pip install 'sampletune[ray]' "
                          "or use another engine", allowed) from None
    return ray


def start_ray(address: str | None, num_cpus: int, allowed: str):
    """``(ray, owns)``: join the cluster at ``address``, or start a local instance of
    ``num_cpus`` CPUs (no dashboard); ``owns`` is whether this call started Ray (then the
    caller shuts it down). Nothing is started when Ray is already running here."""
    ray = import_ray(allowed)
    owns = not ray.is_initialized()
    if owns:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    return ray, owns


def share(total: float, tasks: int) -> float:
    """Each of ``tasks`` concurrent tasks' share of ``total`` units (CPUs or GPUs), at most
    one: one each when there are enough, fractions otherwise, 0 when there are none."""
    return min(1.0, total / tasks) if total else 0.0
