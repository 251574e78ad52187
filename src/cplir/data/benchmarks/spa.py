"""SPA-Data (Wang et al., CVPR 2019): real rain streaks with clean images made from video, deraining (IDT, MCLIR).

Two layouts are in use:

* SPANet's release: a list file of ``RAIN_PATH GT_PATH`` lines (``real_world.txt`` for training,
  ``real_test_1000.txt`` for the 1,000 test images). The paths are read relative to ROOT (SPANet's code runs
  from the data folder, so a leading ``/`` or ``./`` is dropped); an absolute path that exists is used as it is.
* Folders: the test set ``real_test_1000/{rain,gt}/`` with ``NNN.png`` <-> ``NNNgt.png``, or the training
  patches reorganised as in IDT's loader, ``{input,groundtruth}/N.png`` with the same names.
"""

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from cplir.data.benchmarks.options import check_label, check_names
from cplir.data.benchmarks.pairing import pair_records, read_list, require_dir, stem_pairs
from cplir.data.benchmarks.registry import TaskRecipe, register_benchmark
from cplir.data.benchmarks.report import DataReport, EmptyTask, MissingPair
from cplir.data.records import TaskRecords
from cplir.errors import DataError

SPA_LISTS = {"train": "real_world.txt", "test": "real_test_1000.txt"}
SPA_FOLDERS = {"train": ("input", "groundtruth"), "test": ("real_test_1000/rain", "real_test_1000/gt")}
SPA_LAYOUT = """\
  ROOT/real_world.txt | ROOT/real_test_1000.txt     (lines "RAIN_PATH GT_PATH", relative to ROOT), or folders:
  ROOT/input/N.png <-> ROOT/groundtruth/N.png        (train, IDT's reorganised patches)
  ROOT/real_test_1000/rain/NNN.png <-> ROOT/real_test_1000/gt/NNNgt.png   (test)"""


def _gt_stems(stem: str) -> Sequence[str]:
    """Stem rule: the clean image of ``NNN`` is ``NNN`` or ``NNNgt`` (SPANet's test set)."""
    return stem, f"{stem}gt"


def _list_path(root: Path, entry: str) -> Path:
    """A list entry as a path: relative to ROOT (leading ``./`` or ``/`` dropped) unless it is an existing
    absolute path."""
    path = Path(entry)
    if path.is_absolute() and path.exists():
        return path
    return root / entry.removeprefix("./").lstrip("/")


def _list_pairs(root: Path, list_path: Path) -> Tuple[Dict[Path, Path], List[str]]:
    """``{rain: gt}`` of a SPANet list file and its malformed lines."""
    pairs, malformed = {}, []
    for line in read_list(list_path):
        fields = line.split()
        if len(fields) != 2:
            malformed.append(line)
            continue
        pairs[_list_path(root, fields[0])] = _list_path(root, fields[1])
    return pairs, malformed


@register_benchmark("spa_data", tasks=("derain",), recipes=lambda task, split: {task: TaskRecipe("rain")})
def spa_data(root: Path, split: str, report: DataReport, *, list_file=None, input_dir=None, target_dir=None,
             task="derain") -> TaskRecords:
    """SPA-Data: a SPANet list file when there is one, else rain/clean folders (module docstring).

    Layout: :data:`SPA_LAYOUT`.

    Options:
        list_file: the list file, relative to ROOT or absolute (default: ``real_world.txt`` for train,
            ``real_test_1000.txt`` for test, when present).
        input_dir, target_dir: the rain and clean folders relative to ROOT when there is no list file (default:
            ``input``/``groundtruth`` for train, ``real_test_1000/rain``/``real_test_1000/gt`` for test).
        task: task label of every record.
    """
    task = check_label(task)
    list_path = root / (list_file if list_file is not None else SPA_LISTS[split])
    if list_file is not None or list_path.is_file():
        if not list_path.is_file():
            raise DataError(f"list file {list_path} does not exist; expected layout:\n{SPA_LAYOUT}")
        report.list_files.append(list_path)
        pairs, malformed = _list_pairs(root, list_path)
        if malformed:
            raise DataError(f"list file {list_path} has {len(malformed)} line(s) that are not 'RAIN_PATH GT_PATH', "
                            f"e.g. {malformed[0]!r}; fix them")
        if not pairs:
            report.empty_tasks.append(EmptyTask(task, list_path))
        rain = [path for path in pairs if path.is_file()]
        report.missing_pairs += [MissingPair(task, path, list_path) for path in pairs if not path.is_file()]
        return {task: pair_records(task, rain, pairs.__getitem__, root, report)}
    default_input, default_target = SPA_FOLDERS[split]
    source = require_dir(root / check_names("input_dir", input_dir or default_input)[0], "rainy images", SPA_LAYOUT)
    clean = require_dir(root / check_names("target_dir", target_dir or default_target)[0], "clean images",
                        SPA_LAYOUT)
    return {task: stem_pairs(task, source, clean, root, report, _gt_stems)}
