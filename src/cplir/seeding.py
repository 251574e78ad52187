"""Random generators that are pure functions of ``(seed, keys...)``.

Every draw that must be reproducible (a sample's crop and degradation, a loader's shuffle, a test image's noise)
takes its own generator from a base seed and the keys that identify it, never from a global stream, so it does
not depend on file-listing order, worker count, rank or how far a resumed run got.

The seed material of ``(seed, *keys)``:

* integer keys only (``(seed, epoch, index)``): the integers themselves, which numpy's ``SeedSequence`` mixes;
* any string key (a root-relative path, a task name): the first 128 bits of SHA-256 of the seed and keys joined by
  the unit separator (Python's ``hash`` is salted per process; the separator keeps ``("ab", "c")`` and
  ``("a", "bc")`` apart).

:func:`numpy_generator` seeds a ``np.random.Generator`` with it; :func:`torch_generator` a ``torch.Generator``
with 64 bits of it (with no keys, with the seed itself: ``torch.Generator().manual_seed(seed)``).
"""

from __future__ import annotations

import hashlib
from typing import List, Union

import numpy as np
import torch

Key = Union[str, int]


def _check(seed: int, keys: tuple) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    for key in keys:
        if isinstance(key, bool) or not isinstance(key, (str, int, np.integer)):
            raise ValueError(f"generator keys must be strings or integers, got {key!r}")
        if not isinstance(key, str) and key < 0:
            raise ValueError(f"integer generator keys must be non-negative, got {key!r}")


def seed_material(seed: int, *keys: Key) -> Union[int, List[int]]:
    """The seed material of ``(seed, *keys)`` (module docstring): a list of integers or a 128-bit integer."""
    _check(seed, keys)
    if all(not isinstance(key, str) for key in keys):
        return [int(seed), *(int(key) for key in keys)]
    text = "\x1f".join(str(part) for part in (int(seed), *keys))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:16], "little")


def numpy_generator(seed: int, *keys: Key) -> np.random.Generator:
    """``np.random.Generator`` that is a pure function of ``(seed, *keys)``, e.g. ``(seed, "a/b.png", "derain")``."""
    return np.random.default_rng(seed_material(seed, *keys))


def torch_generator(seed: int, *keys: Key) -> torch.Generator:
    """CPU ``torch.Generator`` that is a pure function of ``(seed, *keys)``; ``torch_generator(s)`` is
    ``torch.Generator().manual_seed(s)``."""
    material = seed_material(seed, *keys)
    if keys:  # 64 bits mixed from all of it; torch seeds take at most 64
        return torch.Generator().manual_seed(int(np.random.SeedSequence(material).generate_state(1, np.uint64)[0]))
    return torch.Generator().manual_seed(int(seed))
