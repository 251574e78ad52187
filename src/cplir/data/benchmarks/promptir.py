"""PromptIR three-task and AdaIR five-task benchmarks (layouts of PromptIR's and AdaIR's ``data/`` folders).

Both synthesise the denoising inputs (PromptIR's truncated Gaussian noise at each σ) and read real pairs for the
other tasks; the training mix replicates each task as the published training code does (:data:`PROMPTIR_REPEATS`,
:data:`ADAIR_REPEATS`).
"""

from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from cplir.data.benchmarks.options import choose_subset
from cplir.data.benchmarks.pairing import (CleanOf, dir_index, listed, pair_records, read_list, require_dir,
                                           same_name, scan_task, swap_dir, synthesised_records)
from cplir.data.benchmarks.registry import TaskRecipe, register_benchmark
from cplir.data.benchmarks.report import DataReport
from cplir.data.degradations import PROMPTIR_SIGMAS
from cplir.data.records import PairRecord, TaskRecords
from cplir.errors import DataError

PROMPTIR_TASKS = ("denoise", "derain", "dehaze")  # denoise becomes one task per σ
ADAIR_TASKS = PROMPTIR_TASKS + ("deblur", "enhance")
FIVE_TASK_TEST_SIGMAS = (25,)  # the five-task table reports BSD68 at σ=25 only

# Per-epoch replication of each task's records (PromptIR's and AdaIR's training code).
PROMPTIR_REPEATS = {"denoise_15": 3, "denoise_25": 3, "denoise_50": 3, "derain": 120, "dehaze": 1}
ADAIR_REPEATS = {**PROMPTIR_REPEATS, "deblur": 5, "enhance": 20}

# Synthetic stand-ins for the tasks of real pairs (Rain100L, SOTS, GoPro, LOL) when only clean images exist.
STAND_INS = {"derain": "rain", "dehaze": "haze", "deblur": "blur", "enhance": "lowlight"}

PROMPTIR_LAYOUT = """\
  ROOT/Train/Denoise/*.bmp|*.jpg                      (WED + BSD400, clean only: noise is synthesised)
  ROOT/Train/Derain/{rainy/rain-N.png, gt/norain-N.png}
  ROOT/Train/Dehaze/{synthetic/partK/ID_A_BETA.jpg, original/ID.jpg}
  ROOT/test/denoise/bsd68/*                           (clean only: noise synthesised with a fixed seed)
  ROOT/test/derain/Rain100L/{input,target}/NAME
  ROOT/test/dehaze/{input/ID_A_BETA.jpg, target/ID.png}"""
ADAIR_LAYOUT = PROMPTIR_LAYOUT + """
  ROOT/Train/Deblur/{blur,sharp}/NAME                 (GoPro)
  ROOT/Train/Enhance/{low,gt}/NAME                    (LOL)
  ROOT/test/deblur/gopro/{input,target}/NAME
  ROOT/test/enhance/lol/{input,target}/NAME"""

# Optional PromptIR list files, relative to the lists folder; the first one found is used.
PROMPTIR_LISTS = {
    "denoise": ("noisy/denoise_airnet.txt", "noisy/denoise.txt"),  # PromptIR's code reads the AirNet list
    "derain": ("rainy/rainTrain.txt",),
    "dehaze": ("hazy/hazy_outside.txt",),
}


def denoise_recipes(sigmas: Sequence[float]) -> Dict[str, TaskRecipe]:
    """The denoising task labels ``denoise_{σ}`` and their recipe: PromptIR's noise at that σ."""
    return {f"denoise_{sigma:g}": TaskRecipe("noise_promptir", {"sigma": sigma}) for sigma in sigmas}


def _recipes(test_sigmas: Sequence[float]) -> Callable[[str, str], Dict[str, TaskRecipe]]:
    def recipes(task: str, split: str) -> Dict[str, TaskRecipe]:
        if task == "denoise":
            return denoise_recipes(PROMPTIR_SIGMAS if split == "train" else test_sigmas)
        return {task: TaskRecipe(STAND_INS[task])}

    return recipes


def _derain_clean(path: Path) -> Path:
    """``rainy/rain-N.png`` -> ``gt/norain-N.png`` (Rain100L naming); other names keep their name in ``gt/``."""
    name = "no" + path.name if path.name.startswith("rain-") else path.name
    return swap_dir(path, "rainy", "gt").with_name(name)


def _dehaze_id(path: Path) -> str:
    """Scene id of a SOTS/OTS hazy image ``ID_A_BETA.ext``."""
    return path.stem.split("_")[0]


def _list_file(root: Path, lists_dir: Optional[Path], task: str) -> Optional[Path]:
    """The list file restricting ``task``, looked up in ``lists_dir`` when given, else in ``ROOT/data_dir``,
    ``ROOT/../data_dir`` (a PromptIR checkout keeps ``data/`` and ``data_dir/`` side by side) and ``ROOT``."""
    folders = [lists_dir] if lists_dir is not None else [root / "data_dir", root.parent / "data_dir", root]
    for folder in folders:
        for name in PROMPTIR_LISTS.get(task, ()):
            if (folder / name).is_file():
                return folder / name
    return None


def _train_denoise(root: Path, report: DataReport, lists_dir: Optional[Path], tasks: Sequence[str]) -> List[Path]:
    """Clean training images of the denoising ``tasks`` (one per σ)."""
    folder = require_dir(root / "Train" / "Denoise", "clean images of the denoising task", ADAIR_LAYOUT)
    images = scan_task(tasks, folder, report)
    list_file = _list_file(root, lists_dir, "denoise")
    if list_file is None:
        return images
    report.list_files.append(list_file)
    # The shipped BSD400 names carry an "a" prefix that the image files lack: accept both spellings.
    return listed("denoise", read_list(list_file), folder, images, list_file, report,
                  aliases=lambda e: (e, e[1:]) if e.startswith("a") else (e,))


def _train_paired(task: str, folder_name: str, degraded: str, clean: str, clean_of: CleanOf,
                  recursive: bool = False) -> Callable[..., List[PairRecord]]:
    """Reader of a ``Train/FOLDER/{degraded,clean}`` task, restricted by its list file when there is one."""

    def read(root: Path, report: DataReport, lists_dir: Optional[Path]) -> List[PairRecord]:
        folder = require_dir(root / "Train" / folder_name, f"training data of the {task} task", ADAIR_LAYOUT)
        source = require_dir(folder / degraded, f"degraded images of the {task} task", ADAIR_LAYOUT)
        require_dir(folder / clean, f"clean images of the {task} task", ADAIR_LAYOUT)
        images = scan_task((task,), source, report, recursive)
        list_file = _list_file(root, lists_dir, task)
        if list_file is not None:
            report.list_files.append(list_file)
            images = listed(task, read_list(list_file), folder, images, list_file, report)
        return pair_records(task, images, clean_of, root, report)

    return read


def _test_paired(task: str, folder: str, clean_of: CleanOf) -> Callable[..., List[PairRecord]]:
    """Reader of a ``test/FOLDER/{input,target}`` task."""

    def read(root: Path, report: DataReport) -> List[PairRecord]:
        source = require_dir(root / "test" / folder / "input", f"degraded test images of the {task} task",
                             ADAIR_LAYOUT)
        require_dir(root / "test" / folder / "target", f"clean test images of the {task} task", ADAIR_LAYOUT)
        return pair_records(task, scan_task((task,), source, report), clean_of, root, report)

    return read


def _dehaze_train_clean(path: Path) -> Path:
    """``Dehaze/synthetic/partK/ID_A_BETA.ext`` -> ``Dehaze/original/ID.ext`` (PromptIR keeps the extension)."""
    i = dir_index(path, "synthetic")
    return Path(*path.parts[:i], "original", _dehaze_id(path) + path.suffix)


def _dehaze_test_clean(path: Path) -> Path:
    """``dehaze/input/ID_A_BETA.jpg`` -> ``dehaze/target/ID.png``."""
    return swap_dir(path, "input", "target").with_name(_dehaze_id(path) + ".png")


_TRAIN_READERS = {
    "derain": _train_paired("derain", "Derain", "rainy", "gt", _derain_clean),
    "dehaze": _train_paired("dehaze", "Dehaze", "synthetic", "original", _dehaze_train_clean, recursive=True),
    "deblur": _train_paired("deblur", "Deblur", "blur", "sharp", same_name("blur", "sharp")),
    "enhance": _train_paired("enhance", "Enhance", "low", "gt", same_name("low", "gt")),
}
_TEST_READERS = {
    "derain": _test_paired("derain", "derain/Rain100L", same_name("input", "target")),
    "dehaze": _test_paired("dehaze", "dehaze", _dehaze_test_clean),
    "deblur": _test_paired("deblur", "deblur/gopro", same_name("input", "target")),
    "enhance": _test_paired("enhance", "enhance/lol", same_name("input", "target")),
}


def _check_sigmas(sigmas) -> List[float]:
    sigmas = [sigmas] if isinstance(sigmas, (int, float)) else list(sigmas)
    if not sigmas or any(isinstance(s, bool) or not isinstance(s, (int, float)) or s <= 0 for s in sigmas):
        raise DataError(f"bad value {sigmas!r} for option sigmas: give positive noise levels, e.g. [15, 25, 50]")
    return sigmas


def _promptir_records(root: Path, split: str, report: DataReport, tasks: Sequence[str], sigmas,
                      lists_dir) -> TaskRecords:
    """Records of the PromptIR/AdaIR layout for ``tasks`` (folder-level names; denoise gives one task per σ)."""
    if lists_dir is not None:
        lists_dir = require_dir(Path(lists_dir).expanduser(), "option lists_dir", "  LISTS_DIR/noisy/denoise.txt")
    denoise = denoise_recipes(_check_sigmas(sigmas))
    records: TaskRecords = {}
    for task in tasks:
        if task == "denoise":
            clean = (_train_denoise(root, report, lists_dir, list(denoise)) if split == "train" else
                     scan_task(list(denoise), require_dir(root / "test" / "denoise" / "bsd68",
                                                          "clean BSD68 test images", ADAIR_LAYOUT), report))
            records.update({label: synthesised_records(label, clean, recipe.synth, recipe.params, root)
                            for label, recipe in denoise.items()})
        elif split == "train":
            records[task] = _TRAIN_READERS[task](root, report, lists_dir)
        else:
            records[task] = _TEST_READERS[task](root, report)
    return records


@register_benchmark("promptir_three_task", tasks=PROMPTIR_TASKS, repeats=PROMPTIR_REPEATS,
                    recipes=_recipes(PROMPTIR_SIGMAS))
def promptir_three_task(root: Path, split: str, report: DataReport, *, tasks=PROMPTIR_TASKS,
                        sigmas=PROMPTIR_SIGMAS, lists_dir=None) -> TaskRecords:
    """PromptIR three-task benchmark: tasks ``denoise_15/25/50`` (synthesised), ``derain``, ``dehaze``.

    Layout: :data:`PROMPTIR_LAYOUT` (ROOT = PromptIR's ``data/`` folder).
    Pairing: ``rainy/rain-N.png`` <-> ``gt/norain-N.png`` (other names: the same name in ``gt/``);
    ``synthetic/partK/ID_A_BETA.ext`` <-> ``original/ID.ext``; test ``input/ID_A_BETA.jpg`` <-> ``target/ID.png``;
    otherwise the same name in the sibling folder. Each clean denoising image gives one record per σ with
    ``synth="noise_promptir"``, ``params={"sigma": σ}``.

    Options:
        tasks: subset of ``("denoise", "derain", "dehaze")``.
        sigmas: noise levels of the denoising tasks (labels ``denoise_{σ}``).
        lists_dir: folder holding PromptIR's optional list files (training split only), which restrict the
            samples when present: ``noisy/denoise_airnet.txt`` or else ``noisy/denoise.txt`` (names relative to
            ``Train/Denoise``; a leading ``a`` that the file lacks is accepted, as in the shipped BSD400 names),
            ``rainy/rainTrain.txt`` (relative to ``Train/Derain``), ``hazy/hazy_outside.txt`` (relative to
            ``Train/Dehaze``). Default: looked up in ``ROOT/data_dir``, then ``ROOT/../data_dir`` (PromptIR's
            checkout keeps ``data/`` and ``data_dir/`` side by side), then ``ROOT``; each list separately.
    """
    return _promptir_records(root, split, report, choose_subset("tasks", tasks, PROMPTIR_TASKS), sigmas, lists_dir)


@register_benchmark("adair_five_task", tasks=ADAIR_TASKS, repeats=ADAIR_REPEATS,
                    recipes=_recipes(FIVE_TASK_TEST_SIGMAS))
def adair_five_task(root: Path, split: str, report: DataReport, *, tasks=ADAIR_TASKS, sigmas=None,
                    lists_dir=None) -> TaskRecords:
    """AdaIR five-task benchmark: the three-task layout plus ``deblur`` (GoPro) and ``enhance`` (LOL).

    Layout: :data:`ADAIR_LAYOUT` (ROOT = AdaIR's ``data/`` folder).
    Options as :func:`promptir_three_task`, with ``tasks`` a subset of the five; ``sigmas`` defaults to
    15/25/50 for training and to 25 alone for testing (the five-task table reports BSD68 at σ=25).
    """
    if sigmas is None:
        sigmas = PROMPTIR_SIGMAS if split == "train" else FIVE_TASK_TEST_SIGMAS
    return _promptir_records(root, split, report, choose_subset("tasks", tasks, ADAIR_TASKS), sigmas, lists_dir)
