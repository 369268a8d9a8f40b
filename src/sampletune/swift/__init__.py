"""Swift Sampler (swift-sampler.txt): search a static sampler ``tau(x) = H(T(G(x)))`` over
per-example features with an agent, scoring candidates by fine-tuning a shared model."""

from sampletune.swift.agents import AGENTS, Agent, BOAgent, RandomAgent, RLAgent, make_agent
from sampletune.swift.family import InvalidSampler, SwiftFamily
from sampletune.swift.params import SwiftParams, cube_dim, from_cube, to_cube
from sampletune.swift.sampler_file import (
    SamplerSpec,
    load_sampler,
    sampler_from_file,
    save_sampler,
    to_weighted_sampler,
)
from sampletune.swift.search import FineTuner, SearchConfig, SearchResult, run_search
from sampletune.swift.study import SwiftStudy, Trial

__all__ = [
    "AGENTS", "Agent", "BOAgent", "FineTuner", "InvalidSampler", "RLAgent", "RandomAgent",
    "SamplerSpec", "SearchConfig", "SearchResult", "SwiftFamily", "SwiftParams", "SwiftStudy",
    "Trial", "cube_dim", "from_cube", "load_sampler", "make_agent", "run_search",
    "sampler_from_file", "save_sampler", "to_cube", "to_weighted_sampler",
]
