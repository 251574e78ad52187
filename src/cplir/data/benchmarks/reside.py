"""RESIDE indoor dehazing: ITS for training, SOTS-indoor for testing (FFA-Net, DehazeFormer, MCLIR's tables)."""

from pathlib import Path
from typing import Optional, Sequence

from cplir.data.benchmarks.options import check_label, check_names
from cplir.data.benchmarks.pairing import require_dir, stem_pairs
from cplir.data.benchmarks.registry import TaskRecipe, register_benchmark
from cplir.data.benchmarks.report import DataReport
from cplir.data.records import TaskRecords
from cplir.errors import DataError

RESIDE_FOLDERS = {"train": "ITS", "test": "SOTS/indoor"}
CLEAN_DIRS = ("clear", "gt", "GT")  # ITS and FFA-Net: clear; the SOTS download: gt; DehazeFormer: GT
RESIDE_LAYOUT = """\
  ROOT/ITS/hazy/ID_K_A.png          <-> ROOT/ITS/clear/ID.png            (train)
  ROOT/SOTS/indoor/hazy/ID_K.png    <-> ROOT/SOTS/indoor/gt/ID.png       (test; clean folder clear/ or GT/ too)
  (ROOT may also be the ITS or SOTS/indoor folder itself; a clean file with the hazy file's name is used first)"""


def _scene_id(stem: str) -> Sequence[str]:
    """Stem rule: the clean image of hazy ``ID_K_A`` (ITS) or ``ID_K`` (SOTS) is ``ID``."""
    folder, _, name = stem.rpartition("/")
    return (f"{folder}/{name.split('_')[0]}" if folder else name.split("_")[0],)


def _clean_dir(base: Path, clean_dir: Optional[str]) -> Path:
    if clean_dir is not None:
        return require_dir(base / check_names("clean_dir", clean_dir)[0], "clean images", RESIDE_LAYOUT)
    for name in CLEAN_DIRS:
        if (base / name).is_dir():
            return base / name
    raise DataError(f"no clean folder ({', '.join(CLEAN_DIRS)}) in {base}; expected layout:\n{RESIDE_LAYOUT}")


@register_benchmark("reside_indoor", tasks=("dehaze",), recipes=lambda task, split: {task: TaskRecipe("haze")})
def reside_indoor(root: Path, split: str, report: DataReport, *, clean_dir=None, task="dehaze") -> TaskRecords:
    """RESIDE indoor: ITS (13,990 hazy images of 1,399 scenes) to train, SOTS-indoor (500 hazy images) to test.

    Layout: :data:`RESIDE_LAYOUT`. Pairing: a clean file of the same name if there is one (reorganised copies such
    as DehazeFormer's), else the scene ``ID`` before the first ``_`` of the hazy name, any image extension.

    Options:
        clean_dir: the clean folder's name (default: the first of ``clear``, ``gt``, ``GT`` present).
        task: task label of every record.
    """
    base = root / RESIDE_FOLDERS[split] if (root / RESIDE_FOLDERS[split]).is_dir() else root
    hazy = require_dir(base / "hazy", f"hazy images of the {split} split", RESIDE_LAYOUT)
    task = check_label(task)
    return {task: stem_pairs(task, hazy, _clean_dir(base, clean_dir), root, report, _scene_id)}
