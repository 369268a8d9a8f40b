"""What importing the library costs a process, against importing PyTorch alone.

Every ``sampletune`` command is a new process, and on small data its imports can take
longer than its trainings (one training of a 500-row table takes about 0.3 s). Each row
times, in fresh interpreters, importing ``torch`` and then one entry point of the library
(or running the ``sampletune --help`` command), and reports the library's seconds beyond
torch and the whole as a ratio to ``import torch`` measured in the same run (runs
interleaved, median of ``--repeats``). The last column names the heavy optional modules
the entry point pulled in: torchvision (with ``torch._dynamo``), ``scipy.stats`` and
``sklearn.mixture`` are imported where they are used, not at import time.

Run: ``.venv/bin/python benchmarks/import_time.py [--repeats 5]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ENTRY_POINTS = ("sampletune.cli", "sampletune.experiments.run",
                "sampletune.experiments.swift_pipeline", "sampletune.api")
HEAVY = ("torchvision", "torch._dynamo", "scipy.stats", "sklearn.mixture", "scipy.optimize",
         "matplotlib.pyplot", "ray")
PROBE = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
{body}
t2 = time.perf_counter()
print(json.dumps({{"torch": t1 - t0, "library": t2 - t1,
                   "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def probe(body: str) -> dict:
    """Seconds of ``import torch`` and of ``body`` after it, in a fresh interpreter."""
    code = PROBE.format(body=body, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def command_seconds(args: list[str]) -> float:
    """Wall seconds of a ``sampletune`` command in a new process."""
    exe = Path(sys.executable).with_name("sampletune")
    start = time.perf_counter()
    subprocess.run([str(exe), *args], check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    bodies = {m: f"import {m}" for m in ENTRY_POINTS}
    samples: dict[str, list[dict]] = {m: [] for m in bodies}
    torch_alone, helps = [], []
    for _ in range(args.repeats):
        torch_alone.append(probe("pass")["torch"])
        for name, body in bodies.items():
            samples[name].append(probe(body))
        helps.append(command_seconds(["--help"]))
    base = statistics.median(torch_alone)
    print(f"`import torch` alone: {base:.2f} s (median of {args.repeats})\n")
    print("| entry point | seconds beyond torch | whole, in `import torch`s | heavy modules "
          "imported |\n|---|---|---|---|")
    for name, runs in samples.items():
        extra = statistics.median(r["library"] for r in runs)
        heavy = ", ".join(runs[-1]["heavy"]) or "none"
        print(f"| `import {name}` | {extra:.2f} | {(base + extra) / base:.2f}x | {heavy} |")
    help_s = statistics.median(helps)
    print(f"| `sampletune --help` (a new process) | {help_s - base:.2f} | {help_s / base:.2f}x "
          "| |")


if __name__ == "__main__":
    main()
