"""Opening every file of a benchmark once: what a scan cannot see (unreadable files, pairs of different sizes)."""

from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Tuple, Union

from tqdm import tqdm

from cplir.data.image_io import read_image_uint8
from cplir.data.records import PairRecord, TaskRecords
from cplir.data.scale import size_mismatch
from cplir.errors import ImageReadError


def verify_images(records: Union[TaskRecords, Iterable[PairRecord]], progress: bool = False, min_side: int = 0,
                  needed_by: str = "") -> List[Tuple[Path, str]]:
    """Open every file of ``records`` once; ``(path, problem)`` for each unreadable file, mismatched pair, or
    image with a side shorter than ``min_side`` (what ``needed_by`` needs, e.g. "the training crop 128x128").

    A pair whose sizes do not match (at the record's scale) is reported under the degraded path. ``progress``
    shows a bar (a real benchmark has tens of thousands of files).
    """
    items = [r for rs in records.values() for r in rs] if isinstance(records, Mapping) else list(records)
    shapes: Dict[Path, Optional[Tuple[int, ...]]] = {}
    problems: List[Tuple[Path, str]] = []
    paths = sorted({p for r in items for p in (r.clean, r.degraded, r.depth) if p is not None})
    depths = {r.depth for r in items}
    for path in tqdm(paths, desc="reading images", unit="img", disable=not progress, leave=False):
        try:
            shapes[path] = read_image_uint8(path).shape
        except ImageReadError as error:
            shapes[path] = None
            problems.append((path, str(error)))
            continue
        height, width = shapes[path][:2]
        if min(height, width) < min_side and path not in depths:
            problems.append((path, f"{width}x{height} is smaller than {needed_by}; remove or replace it"))
    for record in (r for r in items if r.degraded is not None):
        lq, gt = shapes[record.degraded], shapes[record.clean]
        problem = None if lq is None or gt is None else size_mismatch(lq, gt, record.scale, record.clean)
        if problem:
            problems.append((record.degraded, problem))
    return problems
