"""Sample records: what a benchmark adapter produces, before any pixel is read.

An adapter turns a root folder into :class:`PairRecord` lists grouped by task. Pairing is a pure function of
paths, so the same folder always gives the same records in the same (sorted) order.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional


@dataclass(frozen=True)
class PairRecord:
    """One (degraded, clean, task) sample.

    Attributes:
        task: task label, e.g. ``"denoise_25"``, ``"derain"``, ``"dehaze"``, ``"deblur"``, ``"enhance"``, a MiOIR
            task (``"sr"``, ``"blur"``, ...) or a CDD-11 class (``"low_haze_rain"``).
        clean: path of the clean (ground-truth) image.
        degraded: path of the degraded image, or None when the degradation is synthesised on the fly.
        synth: name of the degradation in :data:`cplir.data.degradations.DEGRADATIONS` when synthesised.
        params: fixed keyword arguments for the synthesised degradation (e.g. ``{"sigma": 25}``).
        key: stable identifier (root-relative path) that seeds per-sample randomness, so synthetic test sets do
            not depend on the order the file system lists files in.
        depth: optional depth map path for haze synthesis.
        scale: how many times larger the clean image is than the degraded one along each side (super-resolution;
            1 for restoration). A degraded file of a pair is ``(H // scale, W // scale)`` for a clean ``(H, W)``.
    """

    task: str
    clean: Path
    degraded: Optional[Path] = None
    synth: Optional[str] = None
    params: Mapping = field(default_factory=dict)
    key: str = ""
    depth: Optional[Path] = None
    scale: int = 1

    def __post_init__(self):
        if (self.degraded is None) == (self.synth is None):
            raise ValueError("a PairRecord needs exactly one of `degraded` (a file) or `synth` (a degradation)")
        if isinstance(self.scale, bool) or not isinstance(self.scale, int) or self.scale < 1:
            raise ValueError(f"a PairRecord's scale must be a positive integer, got {self.scale!r}")


TaskRecords = Dict[str, List[PairRecord]]
"""Records grouped by task label, each list sorted by key."""
