"""Selection rules that change the backward pass (selective backprop, ordered SGD) or
what is trained on (crop-level sampling).

They plug into :class:`sampletune.train.loop.Trainer` as its ``selector`` and compose with
any sampler and augmentation.
"""

from sampletune.selection.crop_sampling import CropSampling
from sampletune.selection.ordered_sgd import OSGD_SCHEDULE, OrderedSGD
from sampletune.selection.selective_backprop import SelectiveBackprop, selectivity_for_budget

__all__ = ["OSGD_SCHEDULE", "CropSampling", "OrderedSGD", "SelectiveBackprop",
           "selectivity_for_budget"]
