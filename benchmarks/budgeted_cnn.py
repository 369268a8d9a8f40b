"""The augmentation claim of budgeted-importance-sampling.txt (section 4.5, Table 3) with a
CNN: unif-SGD with the zoo's ``smallcnn`` on a Fashion-MNIST subset (2,560 training images,
the full 10,000-image test set) under budgets 0.2 and 0.5 and the budget-aware linear LR
schedule, with no augmentation, crop + flip, RandAugment, mixup and RICAP, 3 seeds; full
training (B = 1) with crop + flip is the reference, and full training without augmentation
tells whether crop + flip helps at all at this scale.

    PYTHONPATH=src .venv/bin/python benchmarks/budgeted_cnn.py [--out runs/bench-budgeted-cnn]

Resumable like ``budgeted.py``: finished cells in OUT/cells.jsonl are not rerun.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from budgeted import run_and_print, verdicts  # this folder is on sys.path as a script

from sampletune.augment import AUGMENT_NAMES
from sampletune.budget.table import GridSpec

# 2,844 images leave 2,560 for training after the 10% validation carve: N * B is a whole
# number of 128-image batches at both budgets (4 and 10 per epoch), so no draw is rounded away
SPEC = GridSpec(dataset=("fashion-mnist",), model="smallcnn", methods=("unif-sgd",),
                budgets=(0.2, 0.5), lr_schedules=("linear",), augments=AUGMENT_NAMES,
                full_augments=("none", "standard"), seeds=(0, 1, 2), epochs=15, train_subset=2844,
                batch_size=128, lr=0.1, weight_decay=5e-4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/bench-budgeted-cnn")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = run_and_print("table3-fashion-smallcnn", SPEC, Path(args.out), Path(args.out))
    print("## Does the paper's augmentation claim hold here?\n")
    for line in verdicts(rows):
        print("- " + line)


if __name__ == "__main__":
    main()
