"""Benchmark adapters: a root folder of one of the layouts of SPEC §7 -> :data:`TaskRecords` (paths only).

Use::

    records = load_benchmark("promptir_three_task", "/data/promptir", split="train")
    records, report = scan_benchmark("cdd11", "/data/CDD-11", split="test")   # for ``cplir data check``

Every adapter pairs files by a pure function of their paths (a directory component replaced, a name rewritten,
or the same stem), returns each task's records sorted by ``key`` (the root-relative POSIX path of the degraded
file, or of the clean file when the degradation is synthesised) and never reads a pixel.

Problem reporting
-----------------
Adapters never drop a problem silently; they write what they find into a :class:`DataReport`:

* ``missing_pairs`` (:class:`MissingPair`): a degraded file whose clean counterpart does not exist, or a file
  named by a list file that does not exist. The sample is left out of the records.
* ``stray_files``: entries of a scanned image folder that are not images (``notes.txt``, ``.DS_Store``, an
  unexpected sub-folder). They are ignored.
* ``empty_tasks`` (:class:`EmptyTask`): a task folder that holds no image.
* ``counts``: records per task (0 when its folder is empty or none of its pairs is complete).
* ``list_files``: the list files (PromptIR's ``denoise.txt`` ...) that restricted the samples.

:func:`scan_benchmark` returns ``(records, report)`` and raises only when the layout itself is wrong (a missing
root or task folder, an unknown option or value, an unreadable list file, a list entry or file whose clean
counterpart cannot be derived, two targets sharing a stem): ``cplir data check`` prints the report and uses
``report.errors()`` for its exit status. :func:`load_benchmark` scans and then raises one
:class:`~cplir.errors.DataError` for every problem that would spoil training: missing pairs (up to 10 listed,
with the count; ``allow_missing=True`` skips them instead, with a logged warning) and tasks without samples (always
fatal: a whole task never disappears silently). Unreadable images are only found by opening them: the data sets
raise :class:`~cplir.errors.ImageReadError` at load time, and :func:`verify_images` checks every file up front.
"""

import inspect
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from tqdm import tqdm

from cplir.data.degradations import CDD11_CLASSES, DEGRADATION_PARAMS, MIOIR_TASKS, PROMPTIR_SIGMAS
from cplir.data.degradations.resize import SR_MODES
from cplir.data.image_io import is_image_file, read_image_uint8
from cplir.data.records import PairRecord, TaskRecords
from cplir.errors import DataError, ImageReadError

logger = logging.getLogger(__name__)

SPLITS = ("train", "test")
PROMPTIR_TASKS = ("denoise", "derain", "dehaze")  # denoise becomes one task per σ
ADAIR_TASKS = PROMPTIR_TASKS + ("deblur", "enhance")
FIVE_TASK_TEST_SIGMAS = (25,)  # the five-task table reports BSD68 at σ=25 only
CDD11_CLEAN = "clear"
MAX_LISTED = 10  # problems listed in one error message; the count says how many there are in all


# ----------------------------------------------------------------------------------------------------------------
# Problem report
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MissingPair:
    """A sample left out because a file it needs does not exist.

    Attributes:
        task: task label of the sample.
        missing: the file that should exist (with stem matching: ``folder/stem.*``).
        referenced_by: the degraded file that needs it, or the list file that names it.
    """

    task: str
    missing: Path
    referenced_by: Path


@dataclass(frozen=True)
class EmptyTask:
    """A task whose folder holds no image."""

    task: str
    folder: Path


@dataclass
class DataReport:
    """What a scan found besides the records (see the module docstring)."""

    benchmark: str
    root: Path
    split: str
    counts: Dict[str, int] = field(default_factory=dict)
    missing_pairs: List[MissingPair] = field(default_factory=list)
    stray_files: List[Path] = field(default_factory=list)
    empty_tasks: List[EmptyTask] = field(default_factory=list)
    list_files: List[Path] = field(default_factory=list)

    def errors(self, allow_missing: bool = False) -> List[str]:
        """Messages for the problems that make the data set unusable for training (empty when it is fine)."""
        messages = [f"task {e.task!r}: no image in {e.folder}; add the images or leave the task out "
                    f"(option tasks= / classes=)" for e in self.empty_tasks]
        empty = {e.task for e in self.empty_tasks}
        starved = [task for task, count in self.counts.items() if count == 0 and task not in empty]
        messages += [f"task {task!r} has no sample: none of its files has its counterpart (listed below)"
                     for task in starved]
        if self.missing_pairs and (starved or not allow_missing):
            lines = [f"  [{m.task}] {m.missing} (needed by {m.referenced_by})" for m in self.missing_pairs[:MAX_LISTED]]
            more = len(self.missing_pairs) - MAX_LISTED
            messages.append(f"{len(self.missing_pairs)} sample(s) lack a file:\n" + "\n".join(lines)
                            + (f"\n  ... and {more} more" if more > 0 else "")
                            + "\nadd the missing files or fix their names"
                            + ("" if allow_missing else ", or pass allow_missing=True to skip them"))
        return messages

    def raise_errors(self, allow_missing: bool = False) -> None:
        """Raise one DataError listing :meth:`errors`, if any."""
        messages = self.errors(allow_missing)
        if messages:
            raise DataError(f"benchmark {self.benchmark!r} ({self.split} split) at {self.root} is not usable:\n"
                            + "\n".join(messages))


# ----------------------------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------------------------
Adapter = Callable[..., TaskRecords]
"""``adapter(root: Path, split: str, report: DataReport, **options) -> TaskRecords``."""

BENCHMARKS: Dict[str, Adapter] = {}
_WITHOUT_FOLDER: set = set()  # benchmarks whose root is a name (e.g. "embedded"), not a folder to check


def register_benchmark(name: str, folder: bool = True):
    """Register an adapter under ``name`` (a decorator); its keyword-only parameters are its options.

    ``folder=False``: the root is passed through unchanged instead of being checked as an existing folder.
    """

    def decorate(adapter: Adapter) -> Adapter:
        if name in BENCHMARKS:
            raise ValueError(f"benchmark {name!r} is registered twice")
        BENCHMARKS[name] = adapter
        if not folder:
            _WITHOUT_FOLDER.add(name)
        return adapter

    return decorate


def list_benchmarks() -> List[str]:
    return sorted(BENCHMARKS)


def benchmark_options(name: str) -> List[str]:
    """Option names accepted by benchmark ``name`` (besides ``allow_missing`` of :func:`load_benchmark`)."""
    params = inspect.signature(_adapter(name)).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def scan_benchmark(name: str, root: Union[str, Path], split: str = "train",
                   **options) -> Tuple[TaskRecords, DataReport]:
    """Records and problem report of benchmark ``name`` under ``root``; pairing problems do not raise.

    Raises DataError for an unknown benchmark, split or option and for a layout that cannot be read at all.
    """
    adapter = _adapter(name)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    unknown = sorted(set(options) - set(benchmark_options(name)))
    if unknown:
        raise DataError(f"unknown option(s) {unknown} for benchmark {name!r}; valid options: "
                        f"{', '.join(benchmark_options(name) + ['allow_missing'])}")
    root = Path(root) if name in _WITHOUT_FOLDER else Path(root).expanduser().absolute()
    if name not in _WITHOUT_FOLDER and not root.is_dir():
        raise DataError(f"data root {root} does not exist or is not a folder; point the {name!r} benchmark at "
                        f"the folder that holds its data (layout: see `cplir.data.benchmarks.{adapter.__name__}`)")
    report = DataReport(benchmark=name, root=root, split=split)
    records = adapter(root, split, report, **options)
    report.counts = {task: len(items) for task, items in records.items()}
    return records, report


def load_benchmark(name: str, root: Union[str, Path], split: str = "train", *, allow_missing: bool = False,
                   **options) -> TaskRecords:
    """Records of benchmark ``name`` under ``root``, grouped by task, each list sorted by key.

    Args:
        name: one of :func:`list_benchmarks`.
        root: the benchmark's root folder (layout: the adapter's docstring).
        split: ``"train"`` or ``"test"``.
        allow_missing: skip samples whose pair is missing (logged) instead of raising.
        **options: the adapter's options (:func:`benchmark_options`).

    Raises:
        DataError: unknown benchmark/split/option, missing folders, missing pairs, tasks without samples.
    """
    records, report = scan_benchmark(name, root, split, **options)
    report.raise_errors(allow_missing)
    if report.missing_pairs:
        logger.warning("%s: skipped %d sample(s) without a pair (allow_missing=True), e.g. %s", name,
                       len(report.missing_pairs), report.missing_pairs[0].missing)
    return records


def verify_images(records: Union[TaskRecords, Iterable[PairRecord]],
                  progress: bool = False) -> List[Tuple[Path, str]]:
    """Open every file of ``records`` once; ``(path, problem)`` for each unreadable file or mismatched pair.

    A pair whose degraded and clean images differ in size is reported under the degraded path. ``progress``
    shows a bar (a real benchmark has tens of thousands of files).
    """
    items = [r for rs in records.values() for r in rs] if isinstance(records, Mapping) else list(records)
    shapes: Dict[Path, Optional[Tuple[int, ...]]] = {}
    problems: List[Tuple[Path, str]] = []
    paths = sorted({p for r in items for p in (r.clean, r.degraded, r.depth) if p is not None})
    for path in tqdm(paths, desc="reading images", unit="img", disable=not progress, leave=False):
        try:
            shapes[path] = read_image_uint8(path).shape
        except ImageReadError as error:
            shapes[path] = None
            problems.append((path, str(error)))
    for record in (r for r in items if r.degraded is not None):
        lq, gt = shapes[record.degraded], shapes[record.clean]
        if lq is not None and gt is not None and lq != gt:
            problems.append((record.degraded, f"size {lq[1]}x{lq[0]} differs from its clean image {record.clean} "
                                              f"({gt[1]}x{gt[0]})"))
    return problems


def _adapter(name: str) -> Adapter:
    if name not in BENCHMARKS:
        raise DataError(f"unknown benchmark {name!r}; choose one of {', '.join(list_benchmarks())}")
    return BENCHMARKS[name]


# ----------------------------------------------------------------------------------------------------------------
# Shared helpers: scanning, option checks, pairing
# ----------------------------------------------------------------------------------------------------------------
def _require_dir(folder: Path, purpose: str, layout: str) -> Path:
    if not folder.is_dir():
        raise DataError(f"folder {folder} is missing ({purpose}); expected layout:\n{layout}")
    return folder


def _scan_images(folder: Path, report: DataReport, recursive: bool = False) -> List[Path]:
    """Image files of ``folder`` (and its sub-folders when ``recursive``), sorted; everything else is stray."""
    images = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and recursive:
            images += _scan_images(entry, report, recursive)
        elif entry.is_file() and is_image_file(entry):
            images.append(entry)
        else:
            report.stray_files.append(entry)
    return images


def _scan_task(tasks: Sequence[str], folder: Path, report: DataReport, recursive: bool = False) -> List[Path]:
    """:func:`_scan_images`, recording ``tasks`` (those built from this folder) as empty when it holds no image."""
    images = _scan_images(folder, report, recursive)
    if not images:
        report.empty_tasks += [EmptyTask(task, folder) for task in tasks]
    return images


def _key(path: Path, root: Path) -> str:
    """Root-relative POSIX path (absolute for files outside the root, e.g. absolute list entries)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _pairs(task: str, degraded: Iterable[Path], clean_of: Callable[[Path], Path], root: Path,
           report: DataReport) -> List[PairRecord]:
    """A record per degraded file whose clean file ``clean_of(path)`` exists; the others go to the report."""
    records = []
    for path in degraded:
        clean = clean_of(path)
        if clean.is_file():
            records.append(PairRecord(task=task, clean=clean, degraded=path, key=_key(path, root)))
        else:
            report.missing_pairs.append(MissingPair(task, clean, path))
    return sorted(records, key=lambda r: r.key)


def _synthesised(task: str, clean: Iterable[Path], synth: str, params: Mapping, root: Path) -> List[PairRecord]:
    records = [PairRecord(task=task, clean=p, synth=synth, params=dict(params), key=_key(p, root)) for p in clean]
    return sorted(records, key=lambda r: r.key)


def _dir_index(path: Path, name: str) -> int:
    """Index in ``path.parts`` of the last *directory* component named ``name`` (the file name never counts)."""
    for i in range(len(path.parts) - 2, -1, -1):
        if path.parts[i] == name:
            return i
    raise DataError(f"cannot derive the clean image of {path}: no folder named {name!r} in its path")


def _swap_dir(path: Path, old: str, new: str) -> Path:
    """``path`` with its last directory component named ``old`` replaced by ``new``; only that component changes:
    ``a/input/rain_input_01.png`` -> ``a/gt/rain_input_01.png``."""
    i = _dir_index(path, old)
    return Path(*path.parts[:i], new, *path.parts[i + 1:])


def _same_name(degraded_dir: str, clean_dir: str) -> Callable[[Path], Path]:
    """Pairing rule: the same file name in the sibling folder ``clean_dir``."""
    return lambda path: _swap_dir(path, degraded_dir, clean_dir)


def _stem_matcher(input_dir: Path, target_dir: Path, report: DataReport) -> Callable[[Path], Path]:
    """Pairing rule: same relative path in ``target_dir``, else the one file there with the same stem
    (``x.jpg`` <-> ``x.png``); ``folder/stem.*`` (missing) when there is none."""
    targets = _scan_images(target_dir, report, recursive=True)
    by_name = {t.relative_to(target_dir).as_posix(): t for t in targets}
    by_stem = defaultdict(list)
    for target in targets:
        by_stem[target.relative_to(target_dir).with_suffix("").as_posix()].append(target)

    def clean_of(path: Path) -> Path:
        relative = path.relative_to(input_dir)
        if relative.as_posix() in by_name:
            return by_name[relative.as_posix()]
        matches = by_stem.get(relative.with_suffix("").as_posix(), [])
        if len(matches) > 1:
            raise DataError(f"cannot pair {path}: several targets share its stem ({', '.join(map(str, matches))}); "
                            "keep one of them")
        return matches[0] if matches else target_dir / relative.with_suffix(".*")

    return clean_of


def _stem_pairs(task: str, input_dir: Path, target_dir: Path, root: Path, report: DataReport) -> List[PairRecord]:
    inputs = _scan_task((task,), input_dir, report, recursive=True)
    return _pairs(task, inputs, _stem_matcher(input_dir, target_dir, report), root, report)


def _choose(option: str, values, valid: Sequence) -> List:
    """Validate a subset option (one name or a sequence of names) against ``valid``."""
    values = [values] if isinstance(values, str) else list(values)
    unknown = [v for v in values if v not in valid]
    if unknown or not values:
        raise DataError(f"bad value {values!r} for option {option}: choose a non-empty subset of {list(valid)}")
    return list(dict.fromkeys(values))  # drop duplicates, keep order


def _names(option: str, values) -> List[str]:
    """Validate an option holding one or more non-empty names (folder names, task labels)."""
    values = [values] if isinstance(values, str) else list(values)
    if not values or not all(isinstance(v, str) and v for v in values):
        raise DataError(f"bad value {values!r} for option {option}: give one or more non-empty names")
    return list(dict.fromkeys(values))


def _label(task) -> str:
    if not isinstance(task, str) or not task:
        raise DataError(f"bad value {task!r} for option task: give a non-empty task label")
    return task


def _read_list(list_file: Path) -> List[str]:
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read list file {list_file} ({error}); fix or remove it") from error
    return list(dict.fromkeys(line.strip() for line in lines if line.strip()))


def _listed(task: str, entries: Iterable[str], base: Path, available: Sequence[Path], list_file: Path,
            report: DataReport, aliases: Callable[[str], Sequence[str]] = lambda e: (e,)) -> List[Path]:
    """Files of ``available`` (under ``base``) named by list entries; an entry matches the first of its
    ``aliases`` present. Entries matching nothing go to the report."""
    by_name = {p.relative_to(base).as_posix(): p for p in available}
    chosen = []
    for entry in entries:
        match = next((by_name[a] for a in aliases(entry) if a in by_name), None)
        if match is None:
            report.missing_pairs.append(MissingPair(task, base / entry, list_file))
        else:
            chosen.append(match)
    return list(dict.fromkeys(chosen))  # an entry listed under both spellings counts once


# ----------------------------------------------------------------------------------------------------------------
# PromptIR three-task and AdaIR five-task
# ----------------------------------------------------------------------------------------------------------------
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


def _derain_clean(path: Path) -> Path:
    """``rainy/rain-N.png`` -> ``gt/norain-N.png`` (Rain100L naming); other names keep their name in ``gt/``."""
    name = "no" + path.name if path.name.startswith("rain-") else path.name
    return _swap_dir(path, "rainy", "gt").with_name(name)


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
    folder = _require_dir(root / "Train" / "Denoise", "clean images of the denoising task", ADAIR_LAYOUT)
    images = _scan_task(tasks, folder, report)
    list_file = _list_file(root, lists_dir, "denoise")
    if list_file is None:
        return images
    report.list_files.append(list_file)
    # The shipped BSD400 names carry an "a" prefix that the image files lack: accept both spellings.
    return _listed("denoise", _read_list(list_file), folder, images, list_file, report,
                   aliases=lambda e: (e, e[1:]) if e.startswith("a") else (e,))


def _train_paired(task: str, folder_name: str, degraded: str, clean: str, clean_of: Callable[[Path], Path],
                  recursive: bool = False) -> Callable[..., List[PairRecord]]:
    """Reader of a ``Train/FOLDER/{degraded,clean}`` task, restricted by its list file when there is one."""

    def read(root: Path, report: DataReport, lists_dir: Optional[Path]) -> List[PairRecord]:
        folder = _require_dir(root / "Train" / folder_name, f"training data of the {task} task", ADAIR_LAYOUT)
        source = _require_dir(folder / degraded, f"degraded images of the {task} task", ADAIR_LAYOUT)
        _require_dir(folder / clean, f"clean images of the {task} task", ADAIR_LAYOUT)
        images = _scan_task((task,), source, report, recursive)
        list_file = _list_file(root, lists_dir, task)
        if list_file is not None:
            report.list_files.append(list_file)
            images = _listed(task, _read_list(list_file), folder, images, list_file, report)
        return _pairs(task, images, clean_of, root, report)

    return read


def _test_paired(task: str, folder: str, clean_of: Callable[[Path], Path]) -> Callable[..., List[PairRecord]]:
    """Reader of a ``test/FOLDER/{input,target}`` task."""

    def read(root: Path, report: DataReport) -> List[PairRecord]:
        source = _require_dir(root / "test" / folder / "input", f"degraded test images of the {task} task",
                              ADAIR_LAYOUT)
        _require_dir(root / "test" / folder / "target", f"clean test images of the {task} task", ADAIR_LAYOUT)
        return _pairs(task, _scan_task((task,), source, report), clean_of, root, report)

    return read


def _dehaze_train_clean(path: Path) -> Path:
    """``Dehaze/synthetic/partK/ID_A_BETA.ext`` -> ``Dehaze/original/ID.ext`` (PromptIR keeps the extension)."""
    i = _dir_index(path, "synthetic")
    return Path(*path.parts[:i], "original", _dehaze_id(path) + path.suffix)


def _dehaze_test_clean(path: Path) -> Path:
    """``dehaze/input/ID_A_BETA.jpg`` -> ``dehaze/target/ID.png``."""
    return _swap_dir(path, "input", "target").with_name(_dehaze_id(path) + ".png")


_TRAIN_READERS = {
    "derain": _train_paired("derain", "Derain", "rainy", "gt", _derain_clean),
    "dehaze": _train_paired("dehaze", "Dehaze", "synthetic", "original", _dehaze_train_clean, recursive=True),
    "deblur": _train_paired("deblur", "Deblur", "blur", "sharp", _same_name("blur", "sharp")),
    "enhance": _train_paired("enhance", "Enhance", "low", "gt", _same_name("low", "gt")),
}
_TEST_READERS = {
    "derain": _test_paired("derain", "derain/Rain100L", _same_name("input", "target")),
    "dehaze": _test_paired("dehaze", "dehaze", _dehaze_test_clean),
    "deblur": _test_paired("deblur", "deblur/gopro", _same_name("input", "target")),
    "enhance": _test_paired("enhance", "enhance/lol", _same_name("input", "target")),
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
        lists_dir = _require_dir(Path(lists_dir).expanduser(), "option lists_dir", "  LISTS_DIR/noisy/denoise.txt")
    labels = {f"denoise_{sigma:g}": sigma for sigma in _check_sigmas(sigmas)}
    records: TaskRecords = {}
    for task in tasks:
        if task == "denoise":
            clean = (_train_denoise(root, report, lists_dir, list(labels)) if split == "train" else
                     _scan_task(list(labels), _require_dir(root / "test" / "denoise" / "bsd68",
                                                           "clean BSD68 test images", ADAIR_LAYOUT), report))
            records.update({label: _synthesised(label, clean, "noise_promptir", {"sigma": sigma}, root)
                            for label, sigma in labels.items()})
        elif split == "train":
            records[task] = _TRAIN_READERS[task](root, report, lists_dir)
        else:
            records[task] = _TEST_READERS[task](root, report)
    return records


@register_benchmark("promptir_three_task")
def promptir_three_task(root: Path, split: str, report: DataReport, *, tasks=("denoise", "derain", "dehaze"),
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
    return _promptir_records(root, split, report, _choose("tasks", tasks, PROMPTIR_TASKS), sigmas, lists_dir)


@register_benchmark("adair_five_task")
def adair_five_task(root: Path, split: str, report: DataReport, *,
                    tasks=("denoise", "derain", "dehaze", "deblur", "enhance"), sigmas=None,
                    lists_dir=None) -> TaskRecords:
    """AdaIR five-task benchmark: the three-task layout plus ``deblur`` (GoPro) and ``enhance`` (LOL).

    Layout: :data:`ADAIR_LAYOUT` (ROOT = AdaIR's ``data/`` folder).
    Options as :func:`promptir_three_task`, with ``tasks`` a subset of the five; ``sigmas`` defaults to
    15/25/50 for training and to 25 alone for testing (the five-task table reports BSD68 at σ=25).
    """
    if sigmas is None:
        sigmas = PROMPTIR_SIGMAS if split == "train" else FIVE_TASK_TEST_SIGMAS
    return _promptir_records(root, split, report, _choose("tasks", tasks, ADAIR_TASKS), sigmas, lists_dir)


# ----------------------------------------------------------------------------------------------------------------
# MiOIR seven-task, CDD-11, all-weather, WeatherBench, generic paired folders
# ----------------------------------------------------------------------------------------------------------------
@register_benchmark("mioir_seven_task")
def mioir_seven_task(root: Path, split: str, report: DataReport, *, tasks=MIOIR_TASKS, level="id",
                     sr_mode="torch") -> TaskRecords:
    """MiOIR seven-task benchmark synthesised from clean images found anywhere under ROOT (DF2K in the paper).

    ROOT holds one split (``split`` does not change the layout). Every clean image gives one record per task of
    ``sr, blur, noise, jpeg, rain, haze, lowlight`` with ``synth`` = the task name.

    Options:
        tasks: subset of the seven tasks.
        level: ``"id"`` (in-distribution) or ``"ood"`` (harder ranges), stored as ``params["level"]``; SR has a
            single level, so its params hold no level.
        sr_mode: ``"torch"`` (MiOIR's bicubic without antialiasing) or ``"pil"``, stored as ``params["mode"]``
            of the ``sr`` records.
    """
    tasks = _choose("tasks", tasks, MIOIR_TASKS)
    if level not in ("id", "ood"):
        raise DataError(f"bad value {level!r} for option level: choose 'id' or 'ood'")
    if sr_mode not in SR_MODES:
        raise DataError(f"bad value {sr_mode!r} for option sr_mode: choose one of {', '.join(SR_MODES)}")
    clean = _scan_task(tasks, root, report, recursive=True)
    records = {}
    for task in tasks:
        params = {"level": level} if "level" in DEGRADATION_PARAMS[task] else {}
        if task == "sr":
            params["mode"] = sr_mode
        records[task] = _synthesised(task, clean, task, params, root)
    return records


CDD11_LAYOUT = """\
  ROOT/CDD-11_{train,test}/clear/NAME                  (ROOT may also be the CDD-11_{train,test} folder itself)
  ROOT/CDD-11_{train,test}/{low,haze,rain,snow,low_haze,low_rain,low_snow,haze_rain,haze_snow,low_haze_rain,
                            low_haze_snow}/NAME"""


@register_benchmark("cdd11")
def cdd11(root: Path, split: str, report: DataReport, *, classes=CDD11_CLASSES) -> TaskRecords:
    """CDD-11: each degraded ``CLASS/NAME`` paired with ``clear/NAME``; one task per class.

    Layout: :data:`CDD11_LAYOUT`.
    Options:
        classes: subset of the 11 degraded classes.
    """
    classes = _choose("classes", classes, CDD11_CLASSES)
    expected = f"CDD-11_{split}"
    if (root / expected).is_dir():
        base = root / expected
    elif root.name.startswith("CDD-11_") and root.name != expected:
        raise DataError(f"{root} holds another split than {split!r}; point ROOT at its parent folder or at "
                        f"{root.parent / expected}")
    else:
        base = root
    _require_dir(base / CDD11_CLEAN, f"clean images of the {split} split", CDD11_LAYOUT)
    records = {}
    for cls in classes:
        folder = _require_dir(base / cls, f"images of class {cls!r} (or leave it out with classes=)", CDD11_LAYOUT)
        records[cls] = _pairs(cls, _scan_task((cls,), folder, report), _same_name(cls, CDD11_CLEAN), root, report)
    return records


ALLWEATHER_LAYOUT = """\
  ROOT/allweather/{input,gt}/NAME
  ROOT/allweather.txt        (one input path per line, relative to ROOT or absolute; optional)"""


@register_benchmark("allweather")
def allweather(root: Path, split: str, report: DataReport, *, list_file=None, task="allweather") -> TaskRecords:
    """All-weather benchmark (TransWeather's data): input images named by a list file, one task label.

    Layout: :data:`ALLWEATHER_LAYOUT`.
    The clean image is the input path with its last ``input`` *directory* component replaced by ``gt`` (file
    names are kept even when they contain the text "input"). ROOT holds one split (``split`` does not change the
    layout): point it, or ``list_file``, at the test lists (Snow100K-S/L, Outdoor-Rain, RainDrop) for testing.

    Options:
        list_file: the list file (relative to ROOT or absolute). Default ``ROOT/allweather.txt``; when that file
            does not exist, every image under ``ROOT/allweather/input`` is used.
        task: task label of every record.
    """
    task = _label(task)
    if list_file is None and not (root / "allweather.txt").is_file():
        folder = _require_dir(root / "allweather" / "input", "no list file ROOT/allweather.txt either",
                              ALLWEATHER_LAYOUT)
        inputs = _scan_task((task,), folder, report, recursive=True)
    else:
        list_path = root / (list_file if list_file is not None else "allweather.txt")
        if not list_path.is_file():
            raise DataError(f"list file {list_path} does not exist; expected layout:\n{ALLWEATHER_LAYOUT}")
        report.list_files.append(list_path)
        entries = [root / entry for entry in _read_list(list_path)]  # absolute entries stay absolute
        inputs = [path for path in entries if path.is_file()]
        report.missing_pairs += [MissingPair(task, path, list_path) for path in entries if not path.is_file()]
        if not entries:
            report.empty_tasks.append(EmptyTask(task, list_path))
    return {task: _pairs(task, inputs, _same_name("input", "gt"), root, report)}


WEATHERBENCH_LAYOUT = """\
  ROOT/{train,test}/{haze,rain,snow}/{input,target}/NAME   (folder names configurable; x.jpg <-> x.png allowed)"""


@register_benchmark("weatherbench")
def weatherbench(root: Path, split: str, report: DataReport, *, tasks=("haze", "rain", "snow"), input_dir="input",
                 target_dir="target") -> TaskRecords:
    """WeatherBench (real haze/rain/snow) as a generic paired layout; one task per task folder.

    Layout: :data:`WEATHERBENCH_LAYOUT`.
    Pairing: the same relative path in the target folder, else the one target with the same stem.

    Options:
        tasks: task folder names (they are also the task labels).
        input_dir, target_dir: names of the degraded and clean folders inside each task folder.
    """
    split_dir = _require_dir(root / split, f"the {split} split", WEATHERBENCH_LAYOUT)
    records = {}
    for task in _names("tasks", tasks):
        folder = _require_dir(split_dir / task, f"the {task!r} task (or leave it out with tasks=)",
                              WEATHERBENCH_LAYOUT)
        inputs = _require_dir(folder / input_dir, "degraded images", WEATHERBENCH_LAYOUT)
        targets = _require_dir(folder / target_dir, "clean images", WEATHERBENCH_LAYOUT)
        records[task] = _stem_pairs(task, inputs, targets, root, report)
    return records


@register_benchmark("paired_folder")
def paired_folder(root: Path, split: str, report: DataReport, *, input_dir="input", target_dir="target",
                  task="paired") -> TaskRecords:
    """Any two folders of degraded and clean images, paired by relative path or stem; one task label.

    Layout: ``ROOT/INPUT_DIR/NAME`` <-> ``ROOT/TARGET_DIR/NAME`` (``x.jpg`` <-> ``x.png`` allowed). ROOT holds one
    split (``split`` does not change the layout).

    Options:
        input_dir, target_dir: folders relative to ROOT, or absolute.
        task: task label of every record.
    """
    task = _label(task)
    layout = f"  ROOT/{input_dir}/NAME <-> ROOT/{target_dir}/NAME"
    return {task: _stem_pairs(task, _require_dir(root / input_dir, "degraded images", layout),
                              _require_dir(root / target_dir, "clean images", layout), root, report)}
