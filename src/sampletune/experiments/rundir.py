"""Moved to :mod:`sampletune.rundir` (base layer, so families can use it); this path is an
alias of that module."""

import sys

from sampletune import rundir

sys.modules[__name__] = rundir
