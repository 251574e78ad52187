"""Super-resolution benchmarks: DIV2K / Flickr2K-style training folders and the classic test sets.

Every record has ``scale`` s: the clean image is the high-resolution (HR) one and the degraded image is its
low-resolution (LR) version, (H // s, W // s). LR files follow the EDSR/DIV2K naming (``0001.png`` <->
``0001x4.png``; the same stem is accepted too). Option ``lr`` says where the LR images come from:

* ``"files"``: the LR folder (an HR image without its LR file is reported as a missing pair);
* ``"bicubic"``: synthesised from the HR image by MATLAB's bicubic ``imresize`` after cutting it at the top left
  to a multiple of s (how DIV2K's ``LR_bicubic`` files and the test sets' LR images are made);
* ``"auto"`` (default): the files when the LR folder exists, otherwise synthesised.

Scores follow the SR convention: Y channel, ``crop_border`` = s (``eval: {protocol: basicsr_y, crop_border: s}``).
"""

from pathlib import Path
from typing import Callable, Dict, List, Sequence

from cplir.data.benchmarks.options import check_label, choose_subset
from cplir.data.benchmarks.pairing import pair_records, require_dir, scan_task, stem_matcher, synthesised_records
from cplir.data.benchmarks.registry import TaskRecipe, register_benchmark
from cplir.data.benchmarks.report import DataReport
from cplir.data.degradations.resize import SR_MODES
from cplir.data.records import PairRecord, TaskRecords
from cplir.errors import DataError

SR_SCALES = (2, 3, 4)
SR_TASKS = {f"sr_x{s}": s for s in SR_SCALES}  # task label -> scale
SR_TEST_SETS = ("Set5", "Set14", "B100", "Urban100", "Manga109")
LR_SOURCES = ("auto", "files", "bicubic")

SR_FOLDER_LAYOUT = """\
  ROOT/HR/NAME.png
  ROOT/LR_bicubic/X{s}/NAMEx{s}.png      (optional: synthesised from HR when absent, see option lr)"""
DIV2K_LAYOUT = """\
  ROOT/DIV2K_{train,valid}_HR/0001.png                          (test split = DIV2K_valid)
  ROOT/DIV2K_{train,valid}_LR_bicubic/X{s}/0001x{s}.png         (optional, see option lr)"""
SR_TEST_LAYOUT = """\
  ROOT/{Set5,Set14,B100,Urban100,Manga109}/HR/NAME.png
  ROOT/{Set5,...}/LR_bicubic/X{s}/NAMEx{s}.png                  (optional, see option lr)"""


def sr_recipe(scale: int, mode: str = "matlab") -> TaskRecipe:
    """The LR input of scale ``scale``: bicubic downscaling (MATLAB ``imresize`` by default)."""
    return TaskRecipe("downscale", {"scale": scale, "mode": mode})


def _sr_recipes(task: str, split: str) -> Dict[str, TaskRecipe]:
    return {task: sr_recipe(SR_TASKS[task])}


def _check_sr_options(scale, lr: str, mode: str) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2:
        raise DataError(f"bad value {scale!r} for option scale: give an integer >= 2 (the tables use 2, 3, 4)")
    if lr not in LR_SOURCES:
        raise DataError(f"bad value {lr!r} for option lr: choose one of {', '.join(LR_SOURCES)}")
    if mode not in SR_MODES:
        raise DataError(f"bad value {mode!r} for option mode: choose one of {', '.join(SR_MODES)}")
    return scale


def _lr_stems(scale: int) -> Callable[[str], Sequence[str]]:
    """Stem rule HR -> LR: ``0001`` -> ``0001x4`` (the EDSR/DIV2K naming), else the same stem."""
    return lambda stem: (f"{stem}x{scale}", stem)


def sr_records(task: str, hr_dir: Path, lr_dir: Path, scale: int, lr: str, mode: str, root: Path,
               report: DataReport, layout: str) -> List[PairRecord]:
    """Records of one HR folder at ``scale``: LR files of ``lr_dir`` paired by name, or synthesised (``lr``)."""
    require_dir(hr_dir, "high-resolution images", layout)
    if lr == "bicubic" or (lr == "auto" and not lr_dir.is_dir()):
        recipe = sr_recipe(scale, mode)
        return synthesised_records(task, scan_task((task,), hr_dir, report, recursive=True), recipe.synth,
                                   recipe.params, root)
    require_dir(lr_dir, f"low-resolution images at scale {scale} (or option lr: bicubic)", layout)
    # From the HR side: an HR image without its LR file is a missing pair, not a test image silently left out.
    hr_images = scan_task((task,), hr_dir, report, recursive=True)
    return pair_records(task, hr_images, stem_matcher(hr_dir, lr_dir, report, _lr_stems(scale)), root, report,
                        scale=scale, from_clean=True)


@register_benchmark("sr_folder", tasks=tuple(SR_TASKS), recipes=_sr_recipes)
def sr_folder(root: Path, split: str, report: DataReport, *, scale=4, hr_dir="HR", lr_dir="LR_bicubic/X{scale}",
              lr="auto", mode="matlab", task=None) -> TaskRecords:
    """A folder of HR images and their LR versions (DIV2K/Flickr2K arranged as ``HR/`` + ``LR_bicubic/X4/``).

    Layout: :data:`SR_FOLDER_LAYOUT`; ROOT holds one split (``split`` does not change the layout).

    Options:
        scale: the SR factor s (the task is ``sr_x{s}``).
        hr_dir, lr_dir: folders relative to ROOT (or absolute); ``{scale}`` in them becomes s. Flickr2K's own
            names: ``hr_dir: Flickr2K_HR, lr_dir: Flickr2K_LR_bicubic/X{scale}``.
        lr: ``auto``, ``files`` or ``bicubic`` (module docstring).
        mode: the bicubic of synthesised LR images (``matlab``; ``pil``, ``torch``).
        task: task label (default ``sr_x{s}``).
    """
    scale = _check_sr_options(scale, lr, mode)
    task = f"sr_x{scale}" if task is None else check_label(task)
    return {task: sr_records(task, root / hr_dir.format(scale=scale), root / lr_dir.format(scale=scale), scale, lr,
                             mode, root, report, SR_FOLDER_LAYOUT)}


@register_benchmark("div2k", tasks=tuple(SR_TASKS), recipes=_sr_recipes)
def div2k(root: Path, split: str, report: DataReport, *, scale=4, lr="auto", mode="matlab") -> TaskRecords:
    """DIV2K as its archives unpack: 800 training and 100 validation images (the test split is the validation set).

    Layout: :data:`DIV2K_LAYOUT`. Options as :func:`sr_folder` (``scale``, ``lr``, ``mode``); the task is
    ``sr_x{s}``.
    """
    scale = _check_sr_options(scale, lr, mode)
    part = "train" if split == "train" else "valid"
    task = f"sr_x{scale}"
    return {task: sr_records(task, root / f"DIV2K_{part}_HR", root / f"DIV2K_{part}_LR_bicubic" / f"X{scale}",
                             scale, lr, mode, root, report, DIV2K_LAYOUT)}


@register_benchmark("sr_test_sets", tasks=SR_TEST_SETS)
def sr_test_sets(root: Path, split: str, report: DataReport, *, sets=SR_TEST_SETS, scale=4, lr="auto",
                 mode="matlab") -> TaskRecords:
    """The classic SR test sets (EDSR's ``benchmark`` folder), one task per set named like its folder.

    Layout: :data:`SR_TEST_LAYOUT`; ROOT holds one split. Options as :func:`sr_folder`, plus ``sets``: a subset of
    ``Set5, Set14, B100, Urban100, Manga109``.
    """
    scale = _check_sr_options(scale, lr, mode)
    records = {}
    for name in choose_subset("sets", sets, SR_TEST_SETS):
        folder = require_dir(root / name, f"the {name} test set (or leave it out with sets=)", SR_TEST_LAYOUT)
        records[name] = sr_records(name, folder / "HR", folder / "LR_bicubic" / f"X{scale}", scale, lr, mode, root,
                                   report, SR_TEST_LAYOUT)
    return records
