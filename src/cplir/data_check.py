"""``cplir data check`` and ``cplir data preview``: validate a data set before training, and look at it.

A target is either

* a YAML config: its ``data.train`` source and every ``data.test`` source are checked with their options
  (``allow_missing: true`` in a source's options lets missing pairs pass, as in training); or
* a root folder: its layout is detected by scanning it with every registered folder layout, in both splits (or
  the one asked for). Every layout that reads it is checked; MiOIR's "any folder of clean images" layout
  (:data:`FALLBACK_LAYOUT`) is tried only when no other layout matches, since it reads any folder. When nothing
  matches, the result lists each layout tried and what it missed.

A layout without split folders (the same records for ``train`` and ``test``) is checked once, as split ``any``.

A config target is also held to what training and testing will ask (:class:`Needs`), so ``data check`` fails
where ``train`` or ``test`` would: a training image smaller than ``data.crop_size``, fewer training samples per
epoch than one batch, a test image smaller than the protocol can score. Symlink loops are named, not followed.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

from cplir.analysis.contact_sheet import image_grid
from cplir.config import DataSource, load_config
from cplir.data.benchmarks import (MAX_LISTED, SPLITS, DataReport, get_benchmark, list_benchmarks, scan_benchmark,
                                   verify_images)
from cplir.data.datasets import PairedDataset, default_repeats, evenly_spaced
from cplir.data.image_io import to_image
from cplir.data.records import TaskRecords
from cplir.errors import DataError
from cplir.metrics.protocols import min_image_side
from cplir.outputs import prepare_output_file

FALLBACK_LAYOUT = "mioir_seven_task"
ANY_SPLIT = "any"
CONFIG_SUFFIXES = (".yaml", ".yml")


@dataclass
class SourceCheck:
    """The check of one benchmark split.

    Attributes:
        source: benchmark, root, split and options that were scanned (split ``any``: a layout without splits).
        report: what the scan found, or None when the layout could not be read at all.
        unreadable: ``(path, problem)`` of every unreadable file or mismatched pair (:func:`verify_images`).
        problems: why the data cannot be used for training; empty when it can.
    """

    source: DataSource
    report: Optional[DataReport]
    unreadable: List[Tuple[Path, str]] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class CheckResult:
    """All checks of a target; ``notes`` say which layouts or splits were tried and did not match."""

    target: str
    checks: List[SourceCheck] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when at least one source was found and every source can be used for training."""
        return bool(self.checks) and all(check.ok for check in self.checks)


# ----------------------------------------------------------------------------------------------------------------
# Finding the sources of a target
# ----------------------------------------------------------------------------------------------------------------
Scan = Tuple[DataSource, TaskRecords, DataReport]


def _scan(source: DataSource) -> Tuple[TaskRecords, DataReport]:
    options = {k: v for k, v in source.options.items() if k != "allow_missing"}  # load_benchmark's, not a scan's
    return scan_benchmark(source.benchmark, source.root, source.split, **options)


def _first_line(error: Exception) -> str:
    """The message of a layout error without the layout drawing that follows it."""
    return str(error).splitlines()[0].removesuffix("; expected layout:")


def _target_kind(target: Union[str, Path]) -> Tuple[Path, bool]:
    """(path, is_config) of a check target; DataError when it is neither a config file nor a folder."""
    path = Path(target).expanduser()
    if path.is_dir():
        return path, False
    if path.is_file() and path.suffix.lower() in CONFIG_SUFFIXES:
        return path, True
    what = "is not a YAML config (.yaml, .yml)" if path.exists() else "does not exist"
    raise DataError(f"{target} {what}; pass a config file such as configs/embedded-three-task-cpl.yaml or the root "
                    "folder of a data set")


@dataclass(frozen=True)
class Needs:
    """What a config asks of one source (nothing for a folder target): every image at least ``min_side`` pixels
    on each side (``needed_by`` says why) and, for the training source, one batch of ``batch_size`` per epoch
    with the config's ``repeats``."""

    min_side: int = 0
    needed_by: str = ""
    batch_size: int = 0
    repeats: Mapping[str, int] = field(default_factory=dict)


def _config_sources(path: Path, split: Optional[str],
                    overrides: Sequence[str] = ()) -> Tuple[List[Tuple[DataSource, Needs]], int]:
    """The config's data sources with what training or testing needs of them (of ``split`` only, when given;
    ``--set`` overrides applied), and its seed."""
    cfg = load_config(path, overrides)
    d, e = cfg.data, cfg.eval
    low = min_image_side(e.protocol, e.crop_border)
    train = Needs(d.crop_size, f"the training crop {d.crop_size}x{d.crop_size} (data.crop_size)", d.batch_size,
                  d.repeats)
    test = Needs(low, f"the {low}x{low} pixels the {e.protocol} protocol can score")
    sources = [(source, needs) for source, needs in ((d.train, train), *((t, test) for t in d.test))
               if split is None or source.split == split]
    if not sources:
        raise DataError(f"config {path} has no data source of the {split} split; check data.train / data.test")
    return sources, cfg.seed


def _layout_scans(name: str, root: Path, splits: Sequence[str]) -> Tuple[List[Scan], List[str]]:
    """Scans of layout ``name`` under ``root`` in ``splits``, and one line per split it does not read."""
    scans, misses = [], {}
    for split in splits:
        source = DataSource(benchmark=name, root=str(root), split=split, options={})
        try:
            scans.append((source, *_scan(source)))
        except DataError as error:
            misses[split] = _first_line(error)
    if len(scans) == 2 and scans[0][1] == scans[1][1]:  # the layout has no split folders: check it once
        source, records, report = scans[0]
        scans = [(DataSource(name, str(root), ANY_SPLIT, {}), records, report)]
    if len(misses) > 1 and len(set(misses.values())) == 1:  # the same miss in both splits: say it once
        return scans, [f"{name}: {next(iter(misses.values()))}"]
    return scans, [f"{name} ({split} split): {miss}" for split, miss in misses.items()]


def _detect_layouts(root: Path, split: Optional[str]) -> Tuple[List[Scan], List[str]]:
    """Scans of every layout that reads ``root`` (see the module docstring) and notes on what did not match."""
    splits = SPLITS if split is None else (split,)
    found, notes, tried = [], [], []
    folder_layouts = [n for n in list_benchmarks() if get_benchmark(n).folder and n != FALLBACK_LAYOUT]
    for name in folder_layouts + [FALLBACK_LAYOUT]:
        if name == FALLBACK_LAYOUT and found:
            break
        scans, misses = _layout_scans(name, root, splits)
        if name == FALLBACK_LAYOUT:
            scans = [scan for scan in scans if any(scan[1].values())]  # it reads any folder: only with images
            if scans:
                notes.append(f"no benchmark layout matches {root}; read as a folder of clean images ({name})")
        if scans:
            found += scans
            notes += [f"{miss} (the layout matches the other split)" for miss in misses]
        else:
            tried += misses or [f"{name}: no image found"]
    if not found:
        notes.append(f"no known layout matches {root}; tried:\n" + "\n".join(f"  {line}" for line in tried))
    return found, notes


# ----------------------------------------------------------------------------------------------------------------
# Checking and printing
# ----------------------------------------------------------------------------------------------------------------
def _check_scan(source: DataSource, records: TaskRecords, report: DataReport, needs: Needs = Needs()) -> SourceCheck:
    check = SourceCheck(source, report, unreadable=verify_images(records, progress=True, min_side=needs.min_side,
                                                                 needed_by=needs.needed_by))
    check.problems = report.errors(bool(source.options.get("allow_missing", False)))
    if check.unreadable:
        check.problems.append(f"{len(check.unreadable)} file(s) cannot be read, do not match their pair or are too "
                              "small (listed above); replace or remove them")
    if not any(records.values()) and not check.problems:
        check.problems.append("no sample at all; add images to the folders of the layout")
    if needs.batch_size and any(records.values()):
        repeats = default_repeats(source.benchmark, records, needs.repeats)
        samples = sum(len(items) * repeats[task] for task, items in records.items())
        if samples < needs.batch_size:
            check.problems.append(f"the training set gives {samples} sample(s) per epoch, fewer than one batch of "
                                  f"{needs.batch_size}; add data, raise data.repeats or lower data.batch_size")
    return check


def _listing(title: str, items: Sequence[Any]) -> List[str]:
    """``title (count):`` and up to :data:`MAX_LISTED` indented items; nothing when ``items`` is empty."""
    if not items:
        return []
    more = len(items) - MAX_LISTED
    return ([f"  {title} ({len(items)}):"] + [f"    {item}" for item in items[:MAX_LISTED]]
            + ([f"    ... and {more} more"] if more > 0 else []))


def format_check(check: SourceCheck) -> str:
    """Human-readable lines of one check: counts per task, findings, verdict."""
    source, report = check.source, check.report
    options = f" options {source.options}" if source.options else ""
    lines = [f"{source.benchmark}  split {source.split}  root {source.root}{options}"]
    if report is not None:
        width = max([len(task) for task in report.counts] + [len("total")])
        lines += [f"  {task:<{width}} {count:>7}" for task, count in report.counts.items()]
        lines.append(f"  {'total':<{width}} {sum(report.counts.values()):>7}")
        lines += _listing("list files", report.list_files)
        lines += _listing("stray files, ignored", report.stray_files)
        lines += _listing("symlink loops, not followed",
                          [f"{path} -> {path.resolve()}" for path in report.symlink_loops])
        if source.options.get("allow_missing"):
            lines += _listing("samples skipped for a missing file (allow_missing)",
                              [f"[{m.task}] {m.missing} (needed by {m.referenced_by})" for m in report.missing_pairs])
        lines += _listing("unreadable or unusable files", [f"{path}: {problem}" for path, problem in check.unreadable])
    verdict = ["  OK"] if check.ok else ["  NOT USABLE:"] + [("  - " if i == 0 else "    ") + line
                                                             for problem in check.problems
                                                             for i, line in enumerate(problem.splitlines())]
    return "\n".join(lines + verdict)


def check_dataset(target: Union[str, Path], split: Optional[str] = None, overrides: Sequence[str] = ()) -> CheckResult:
    """Check a config's data sources or a data root folder (module docstring); print the findings.

    Args:
        target: a YAML config file or a data root folder.
        split: ``"train"`` or ``"test"`` to check that split only; None checks both.
        overrides: ``--set`` overrides for a config target (e.g. ``data.train.root=/data/promptir``).

    Returns:
        The checks; ``ok`` is False when the data cannot be used for training: no layout found, no sample, an
        empty task, unreadable images, or missing pairs (unless the source allows them).

    Raises:
        DataError: the target is neither a config nor a folder, or ``split`` is unknown.
    """
    if split is not None and split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    path, is_config = _target_kind(target)
    result = CheckResult(str(target))
    if is_config:
        for source, needs in _config_sources(path, split, overrides)[0]:
            try:
                result.checks.append(_check_scan(source, *_scan(source), needs))
            except DataError as error:
                result.checks.append(SourceCheck(source, None, problems=[str(error)]))
    else:
        scans, result.notes = _detect_layouts(path.absolute(), split)
        result.checks = [_check_scan(*scan) for scan in scans]
    for check in result.checks:
        print(format_check(check) + "\n")
    for note in result.notes:
        print(f"note: {note}")
    failed = sum(not check.ok for check in result.checks)
    print(f"data check: {'OK' if result.ok else 'NOT USABLE'} ({len(result.checks)} source(s) checked, "
          f"{failed} with problems)" if result.checks else "data check: NOT USABLE (no data found)")
    return result


def preview(target: Union[str, Path], out_png: Union[str, Path], per_task: int = 3, split: str = "train",
            overrides: Sequence[str] = (), overwrite: bool = False) -> Path:
    """Write a PNG grid: a row per task, ``per_task`` (degraded, clean) column pairs of evenly spaced samples.

    Samples come from :class:`PairedDataset` (with the config's seed; 0 for a folder), so synthesised degradations
    are those the model sees. For a folder, the matching layout with the most tasks is shown. An existing
    ``out_png`` is kept unless ``overwrite``.

    Raises:
        DataError: bad target or arguments, or no sample to show.
        ImageReadError: an image cannot be read.
        OutputError: ``out_png`` exists (without ``overwrite``) or cannot be written.
    """
    if isinstance(per_task, bool) or not isinstance(per_task, int) or per_task < 1:
        raise DataError(f"bad value {per_task!r} for per_task: give a positive integer")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if Path(out_png).suffix.lower() != ".png":
        raise DataError(f"--out {out_png}: the preview is a PNG image; give the file a .png name")
    prepare_output_file(out_png, overwrite, "preview image")
    path, is_config = _target_kind(target)
    if is_config:
        sources, seed = _config_sources(path, split, overrides)
        scans = [(source, *_scan(source)) for source, _ in sources]
    else:
        found, notes = _detect_layouts(path.absolute(), split)
        if not found:
            raise DataError(notes[-1])
        scans, seed = [max(found, key=lambda scan: len(scan[1]))], 0
    rows, titles = [], []
    for source, records, _ in scans:
        for task, items in records.items():
            if not items:
                continue
            dataset = PairedDataset(evenly_spaced(items, per_task), seed=seed)
            samples = [dataset[i] for i in range(len(dataset))]
            rows.append([to_image(sample[kind]) for sample in samples for kind in ("lq", "gt")])
            titles.append(task if len(scans) == 1 else f"{source.benchmark}:{task}")
    if not rows:
        raise DataError(f"{target} has no sample to preview in the {split} split; run cplir data check {target}")
    shown = max(len(row) for row in rows) // 2  # tasks may have fewer than per_task samples
    columns = [f"{kind} {i + 1}" for i in range(shown) for kind in ("degraded", "clean")]
    return image_grid(rows, out_png, columns, titles)
