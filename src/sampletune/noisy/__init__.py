"""Learning with noisy labels: the simple baselines a practitioner would reach for (issue 8).

One module per method, each a plain function on tensors (usable from any training loop)
plus a thin object that plugs it into :class:`sampletune.train.Trainer`:

- :mod:`~sampletune.noisy.small_loss`: Co-teaching's small-loss rule on one network;
- :mod:`~sampletune.noisy.bootstrap`: REED soft / hard bootstrapping;
- :mod:`~sampletune.noisy.self_paced`: MentorNet-PD's moving-percentile threshold;
- :mod:`~sampletune.noisy.l2rw`: Learning to Reweight with the validation split as meta set;
- :mod:`~sampletune.noisy.cleanlab_filter`: confident learning's filter (optional extra);
- :mod:`~sampletune.noisy.methods`: ``build_noisy(name, ...)`` and :class:`NoisyMethod`.
"""

from sampletune.noisy.bootstrap import Bootstrap, bootstrap_loss, bootstrap_target
from sampletune.noisy.cleanlab_filter import find_label_issues, kfold_indices, out_of_fold_probs
from sampletune.noisy.estimate import estimate_noise_rate
from sampletune.noisy.l2rw import L2RW, l2rw_weights
from sampletune.noisy.methods import NOISY_NAMES, NoisyMethod, build_noisy, check_noisy
from sampletune.noisy.self_paced import SelfPaced, batch_percentile, self_paced_weights
from sampletune.noisy.small_loss import SmallLoss, forget_rate, small_loss_mask

__all__ = [
    "L2RW", "NOISY_NAMES", "Bootstrap", "NoisyMethod", "SelfPaced", "SmallLoss",
    "batch_percentile", "bootstrap_loss", "bootstrap_target", "build_noisy", "check_noisy",
    "estimate_noise_rate", "find_label_issues", "forget_rate", "kfold_indices",
    "l2rw_weights", "out_of_fold_probs", "self_paced_weights", "small_loss_mask",
]
