"""Scanning folders and pairing files: the building blocks of every benchmark adapter.

Pairing is a pure function of paths (a directory component replaced, a name rewritten, or the same stem), and
records come out sorted by ``key`` (the root-relative POSIX path of the degraded file, or of the clean file when
the degradation is synthesised). Nothing here reads a pixel; problems go to the :class:`DataReport`.
"""

from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from cplir.data.benchmarks.report import DataReport, EmptyTask, MissingPair
from cplir.data.degradations import size_ratio
from cplir.data.image_io import is_image_file
from cplir.data.records import PairRecord
from cplir.errors import DataError

CleanOf = Callable[[Path], Path]
"""Pairing rule: degraded file -> the clean file it pairs with (which may not exist)."""


def require_dir(folder: Path, purpose: str, layout: str) -> Path:
    """``folder`` if it is a folder, else a DataError saying what it holds and drawing the expected ``layout``."""
    if not folder.is_dir():
        raise DataError(f"folder {folder} is missing ({purpose}); expected layout:\n{layout}")
    return folder


def _folder_identity(folder: Path) -> Tuple[int, int]:
    status = folder.stat()  # follows links: two paths to one folder share it
    return status.st_dev, status.st_ino


def scan_images(folder: Path, report: DataReport, recursive: bool = False,
                _seen: Optional[Set[Tuple[int, int]]] = None) -> List[Path]:
    """Image files of ``folder`` (and its sub-folders when ``recursive``), sorted; everything else is stray.

    A sub-folder that leads back to a folder this scan has already entered (a symlink loop, or a second link to
    the same images) is not followed: it goes to ``report.symlink_loops``.
    """
    seen = {_folder_identity(folder)} if _seen is None else _seen
    images = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and recursive:
            if _folder_identity(entry) in seen:
                report.symlink_loops.append(entry)
                continue
            seen.add(_folder_identity(entry))
            images += scan_images(entry, report, recursive, seen)
        elif entry.is_file() and is_image_file(entry):
            images.append(entry)
        else:
            report.stray_files.append(entry)
    return images


def scan_task(tasks: Sequence[str], folder: Path, report: DataReport, recursive: bool = False) -> List[Path]:
    """:func:`scan_images`, recording ``tasks`` (those built from this folder) as empty when it holds no image."""
    images = scan_images(folder, report, recursive)
    if not images:
        report.empty_tasks += [EmptyTask(task, folder) for task in tasks]
    return images


def record_key(path: Path, root: Path) -> str:
    """Root-relative POSIX path (absolute for files outside the root, e.g. absolute list entries)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def pair_records(task: str, degraded: Iterable[Path], clean_of: CleanOf, root: Path, report: DataReport, *,
                 scale: int = 1, from_clean: bool = False) -> List[PairRecord]:
    """A record per degraded file whose clean file ``clean_of(path)`` exists; the others go to the report.

    ``from_clean``: the files given are the clean ones and ``clean_of`` names their degraded counterparts
    (super-resolution, where every HR image of a test set needs its LR file). ``scale``: the records' scale.
    """
    records = []
    for path in degraded:
        other = clean_of(path)
        if other.is_file():
            lq, gt = (other, path) if from_clean else (path, other)
            records.append(PairRecord(task=task, clean=gt, degraded=lq, key=record_key(lq, root), scale=scale))
        else:
            report.missing_pairs.append(MissingPair(task, other, path))
    return sorted(records, key=lambda r: r.key)


def synthesised_records(task: str, clean: Iterable[Path], synth: str, params: Mapping,
                        root: Path) -> List[PairRecord]:
    """A record per clean file, degraded on the fly by ``synth`` with the fixed ``params`` (its scale is the
    degradation's :func:`~cplir.data.degradations.size_ratio`)."""
    scale = size_ratio(synth, params)
    records = [PairRecord(task=task, clean=p, synth=synth, params=dict(params), key=record_key(p, root), scale=scale)
               for p in clean]
    return sorted(records, key=lambda r: r.key)


def dir_index(path: Path, name: str) -> int:
    """Index in ``path.parts`` of the last *directory* component named ``name`` (the file name never counts)."""
    for i in range(len(path.parts) - 2, -1, -1):
        if path.parts[i] == name:
            return i
    raise DataError(f"cannot derive the clean image of {path}: no folder named {name!r} in its path")


def swap_dir(path: Path, old: str, new: str) -> Path:
    """``path`` with its last directory component named ``old`` replaced by ``new``; only that component changes:
    ``a/input/rain_input_01.png`` -> ``a/gt/rain_input_01.png``."""
    i = dir_index(path, old)
    return Path(*path.parts[:i], new, *path.parts[i + 1:])


def same_name(degraded_dir: str, clean_dir: str) -> CleanOf:
    """Pairing rule: the same file name in the sibling folder ``clean_dir``."""
    return lambda path: swap_dir(path, degraded_dir, clean_dir)


def same_stem(stem: str) -> Sequence[str]:
    """Stem rule of :func:`stem_matcher`: the target has the input's stem."""
    return (stem,)


def stem_matcher(input_dir: Path, target_dir: Path, report: DataReport,
                 stems: Callable[[str], Sequence[str]] = same_stem) -> CleanOf:
    """Pairing rule: same relative path in ``target_dir``, else the one file there whose relative stem is the first
    of ``stems(input's relative stem)`` present (by default the same stem: ``x.jpg`` <-> ``x.png``);
    ``target_dir/stem.*`` (missing) when there is none. Stems are POSIX paths without suffix."""
    targets = scan_images(target_dir, report, recursive=True)
    by_name = {t.relative_to(target_dir).as_posix(): t for t in targets}
    by_stem = defaultdict(list)
    for target in targets:
        by_stem[target.relative_to(target_dir).with_suffix("").as_posix()].append(target)

    def clean_of(path: Path) -> Path:
        relative = path.relative_to(input_dir)
        if relative.as_posix() in by_name:
            return by_name[relative.as_posix()]
        candidates = stems(relative.with_suffix("").as_posix())
        matches = next((by_stem[stem] for stem in candidates if stem in by_stem), [])
        if len(matches) > 1:
            raise DataError(f"cannot pair {path}: several targets share its stem ({', '.join(map(str, matches))}); "
                            "keep one of them")
        return matches[0] if matches else target_dir / f"{candidates[0]}.*"

    return clean_of


def stem_pairs(task: str, input_dir: Path, target_dir: Path, root: Path, report: DataReport,
               stems: Callable[[str], Sequence[str]] = same_stem) -> List[PairRecord]:
    """Records of every image under ``input_dir`` paired by :func:`stem_matcher` with ``target_dir``."""
    inputs = scan_task((task,), input_dir, report, recursive=True)
    return pair_records(task, inputs, stem_matcher(input_dir, target_dir, report, stems), root, report)


def read_list(list_file: Path) -> List[str]:
    """Non-empty, stripped lines of a list file, duplicates dropped (first kept)."""
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read list file {list_file} ({error}); fix or remove it") from error
    return list(dict.fromkeys(line.strip() for line in lines if line.strip()))


def listed(task: str, entries: Iterable[str], base: Path, available: Sequence[Path], list_file: Path,
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
