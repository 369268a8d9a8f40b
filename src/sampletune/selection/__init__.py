"""Selection rules that change the backward pass (selective backprop, ordered SGD) or
what is trained on (crop-level sampling).

They plug into :class:`sampletune.train.trainer.Trainer` as its ``selector`` and compose with
any sampler and augmentation; selective backprop's rule (eq. 4) is also a pair of plain
functions on per-example losses for your own loop (``sb_keep_probability``, ``sb_select``).
"""

from sampletune.selection.crop_sampling import CropSampling
from sampletune.selection.ordered_sgd import OSGD_SCHEDULE, OrderedSGD
from sampletune.selection.selective_backprop import (
    SelectiveBackprop,
    sb_keep_probability,
    sb_select,
    selectivity_for_budget,
)

__all__ = [
    "OSGD_SCHEDULE", "CropSampling", "OrderedSGD", "SelectiveBackprop", "sb_keep_probability",
    "sb_select", "selectivity_for_budget",
]
