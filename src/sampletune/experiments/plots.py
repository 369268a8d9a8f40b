"""Moved to :mod:`sampletune.plots` (base layer, so families can use it); this path is an
alias of that module."""

import sys

from sampletune import plots

sys.modules[__name__] = plots
