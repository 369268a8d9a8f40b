"""Seeds derived from a base seed and keys, through ``numpy.random.SeedSequence``.

``derive_seed(seed, "study", 3)`` names a random stream by its keys instead of by an
improvised formula such as ``seed * 1_000_003 + 3``: distinct keys give statistically
independent streams, equal keys the same stream, on every machine and in every process
(no ``hash()``, which Python salts per process). String keys are hashed with SHA-256, so
``"loader"`` and ``"sampler"`` name two streams.

The older formulas stay where published results were drawn with them; those that can
grow past torch's 64-bit seeds pass through :func:`torch_seed`. A user's seed is an
integer in ``[0, MAX_SEED]`` (:func:`check_seed`).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from sampletune.errors import check, check_int

Key = int | str
TORCH_SEED_SPAN = 2**64  # torch's manual_seed takes [0, 2**64) (negatives wrap alike)

# The binding limit: scikit-learn's random_state (numpy RandomState) takes [0, 2**32 - 1], and
# --noisy cleanlab's folds and the noise-rate GMM get the seed as it is. Derived torch seeds
# past 2**64 (FineTuner's sampler, seed * 10_007 * 1_000_003 + epoch, from seed 1_843_378_509)
# wrap mod 2**64 in torch_seed instead of raising.
MAX_SEED = 2**32 - 1


def check_seed(seed: int, field: str = "seed", bits: int = 32) -> None:
    """Seeds are integers (not bools) in ``[0, 2**bits - 1]``: a user's seed has 32 bits
    (:data:`MAX_SEED`); 64 admits every seed torch's ``manual_seed`` takes, such as the
    derived seeds the samplers get (FineTuner's ``seed * 10_007``)."""
    check_int(seed, field, 0, 2**bits - 1, allowed=f"0 <= seed <= 2**{bits} - 1")


def _entropy(base: int, keys: tuple[Key, ...]) -> list[int]:
    out = []
    for i, k in enumerate((base, *keys)):
        field = "seed" if i == 0 else f"keys[{i - 1}]"
        if isinstance(k, str):
            k = int.from_bytes(hashlib.sha256(k.encode()).digest()[:8], "little")
        check(isinstance(k, int | np.integer) and not isinstance(k, bool), field,
              f"{k!r} is not an integer or a string", "int >= 0 or str")
        check(int(k) >= 0, field, f"{int(k)} is negative", ">= 0")
        out.append(int(k))
    return out


def seed_sequence(base: int, *keys: Key) -> np.random.SeedSequence:
    """The ``SeedSequence`` of ``(base, *keys)``; integers must be ``>= 0``."""
    return np.random.SeedSequence(_entropy(base, keys))


def derive_seed(base: int, *keys: Key, bits: int = 32) -> int:
    """An integer seed in ``[0, 2**bits)`` (``bits`` 32 or 64) from ``(base, *keys)``.

    The default 32 bits fit every ``seed`` argument of sampletune (seeds are
    ``< 2**32``); it is the first word of the sequence's state, so
    ``derive_seed(s, a, b) == SeedSequence([s, a, b]).generate_state(1)[0]``.
    """
    check(bits in (32, 64), "bits", f"{bits!r} is not supported", "32 or 64")
    dtype = np.uint32 if bits == 32 else np.uint64
    return int(seed_sequence(base, *keys).generate_state(1, dtype)[0])


def numpy_generator(base: int, *keys: Key) -> np.random.Generator:
    """A ``numpy.random.Generator`` on the stream ``(base, *keys)``; the same stream as
    ``np.random.default_rng([base, *keys])`` for integer keys."""
    return np.random.default_rng(seed_sequence(base, *keys))


def torch_generator(base: int, *keys: Key, device: str | torch.device = "cpu"
                    ) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``derive_seed(base, *keys, bits=64)``."""
    return torch.Generator(device).manual_seed(derive_seed(base, *keys, bits=64))


def torch_seed(value: int) -> int:
    """``value mod 2**64``: a seed ``torch.Generator.manual_seed`` / ``torch.manual_seed``
    takes. Every value torch took before is unchanged (below ``2**64`` it is the value
    itself; a negative one is the value torch wraps it to), so the improvised formulas
    (``seed * 1_000_003 + epoch``) keep their draws; above, where ``manual_seed`` raised
    ``ValueError``, it wraps."""
    return int(value) % TORCH_SEED_SPAN
