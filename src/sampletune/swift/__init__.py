"""Swift Sampler (swift-sampler.txt): search a static sampler ``tau(x) = H(T(G(x)))`` over
per-example features with an agent, scoring candidates by fine-tuning a shared model."""

from sampletune.swift.agents import AGENTS, Agent, BOAgent, RandomAgent, RLAgent, make_agent
from sampletune.swift.engines import ENGINES, EngineConfig
from sampletune.swift.family import InvalidSampler, SwiftFamily
from sampletune.swift.params import SwiftParams, SwiftSpace, cube_dim, from_cube, to_cube
from sampletune.swift.sampler_file import (
    SamplerSpec,
    load_sampler,
    sampler_from_file,
    save_sampler,
    to_weighted_sampler,
)
from sampletune.swift.search import (
    FineTuner,
    SearchConfig,
    SearchResult,
    SwiftObjective,
    run_search,
)
from sampletune.swift.study import SwiftStudy, Trial
from sampletune.swift.trials import InvalidCandidate, Journal, Objective, SearchSpace, run_trials

__all__ = [
    "AGENTS", "ENGINES", "Agent", "BOAgent", "EngineConfig", "FineTuner", "InvalidCandidate",
    "InvalidSampler", "Journal", "Objective", "RLAgent", "RandomAgent", "SamplerSpec",
    "SearchConfig", "SearchResult", "SearchSpace", "SwiftFamily", "SwiftObjective",
    "SwiftParams", "SwiftSpace", "SwiftStudy", "Trial", "cube_dim", "from_cube",
    "load_sampler", "make_agent", "run_search", "run_trials", "sampler_from_file",
    "save_sampler", "to_cube", "to_weighted_sampler",
]
