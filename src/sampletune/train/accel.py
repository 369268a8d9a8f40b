"""The training device's fast paths, both off by default: automatic mixed precision
(``TrainConfig.amp``) and ``torch.compile`` (``TrainConfig.compile``).

Mixed precision runs the model's forward pass under ``torch.autocast`` (bf16 or fp16) and
hands back float32 logits, so every loss, every per-example statistic observers are told
and every metric is computed in float32 as without it. fp16 needs a grad scaler against
gradient underflow (:func:`grad_scaler`, on CUDA only); bf16 has float32's exponent range
and needs none.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor, nn

from sampletune.errors import check

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def logits_of(net: Callable[[Tensor], Tensor], x: Tensor, amp: str, device: torch.device
              ) -> Tensor:
    """``net(x)``, logits ``(B, C)``: with ``amp`` off exactly as it is, else computed under
    autocast to ``amp``'s dtype on ``device`` and cast to float32."""
    if amp == "off":
        return net(x)
    with torch.autocast(device.type, dtype=AMP_DTYPES[amp]):
        return net(x).float()


def grad_scaler(amp: str, device: torch.device) -> torch.amp.GradScaler | None:
    """The loss scaler fp16 training needs (``TrainConfig`` allows fp16 on CUDA only);
    ``None`` for ``off`` and bf16."""
    return torch.amp.GradScaler(device.type) if amp == "fp16" else None


def compiled(net: nn.Module, device: torch.device) -> Callable[[Tensor], Tensor]:
    """``torch.compile(net)``, after checking that the compiler works for ``device`` here
    (a C++ compiler for the CPU, Triton for CUDA): if not, a one-line
    :class:`~sampletune.errors.ConfigError` on ``compile``."""
    problem = _compile_problem(device.type)
    check(problem is None, "compile", f"torch.compile cannot run on {device.type} here "
          f"({problem})", "--no-compile")
    return torch.compile(net)


@functools.cache
def _compile_problem(device_type: str) -> str | None:
    """Why ``torch.compile`` fails on ``device_type`` (its first line), or ``None``: a tiny
    function compiled once per process (a few seconds the first time on a machine)."""
    try:
        torch.compile(lambda t: t * 2 + 1)(torch.ones(2, device=device_type))
    except Exception as err:  # whatever the toolchain raises: missing compiler, Triton, ...
        return (str(err).strip().splitlines() or [type(err).__name__])[0]
    return None
