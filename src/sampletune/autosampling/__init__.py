"""AutoSampling (autosampling-journal.txt, sections 4-5): search a sampling schedule with a
population of workers, multi-exploitation (Algorithm 1) and exploration (Algorithm 2).

This package root holds only the pure parts; the search loop is
:func:`sampletune.autosampling.search.search`, the engines live in ``engine_local`` and
``engine_ray``, the replay samplers (``ScheduleSampler``, ``static_sampler``) in ``replay``,
figures in ``plots``; its command line is ``sampletune.commands.autosampling``.
"""

from sampletune.autosampling.algorithm import (
    EXPLORATIONS,
    cycle_streams,
    draw_stream,
    estimate_distribution,
    exploit,
    explore_weights,
    plan_cycles,
    plan_intervals,
    smooth_distribution,
    worker_rng,
)
from sampletune.autosampling.schedule import RecordedSchedule

__all__ = [
    "EXPLORATIONS", "RecordedSchedule", "cycle_streams", "draw_stream", "estimate_distribution",
    "exploit", "explore_weights", "plan_cycles", "plan_intervals", "smooth_distribution",
    "worker_rng",
]
