"""Budgeted training (budgeted-importance-sampling.txt): methods under a budget B, their
measures, the fixed-subset comparison and the grid runner behind ``sampletune budget-table``."""

from sampletune.budget.coreset import kcenter_greedy, penultimate_features, random_subset
from sampletune.budget.measures import (
    SampleCounter,
    count_entropy,
    mean_std,
    normalized_entropy,
    speedup,
)
from sampletune.budget.methods import (
    ALL_METHODS,
    METHOD_NAMES,
    SUBSET_METHODS,
    Method,
    build_method,
)

__all__ = [
    "ALL_METHODS", "METHOD_NAMES", "SUBSET_METHODS", "Method", "SampleCounter",
    "build_method", "count_entropy", "kcenter_greedy", "mean_std", "normalized_entropy",
    "penultimate_features", "random_subset", "speedup",
]
