"""Adverse-weather benchmarks: TransWeather's all-weather set and WeatherBench (real haze, rain, snow)."""

from pathlib import Path

from cplir.data.benchmarks.options import check_label, check_names
from cplir.data.benchmarks.pairing import pair_records, read_list, require_dir, same_name, scan_task, stem_pairs
from cplir.data.benchmarks.registry import register_benchmark
from cplir.data.benchmarks.report import DataReport, EmptyTask, MissingPair
from cplir.data.records import TaskRecords
from cplir.errors import DataError

ALLWEATHER_LAYOUT = """\
  ROOT/allweather/{input,gt}/NAME
  ROOT/allweather.txt        (one input path per line, relative to ROOT or absolute; optional)"""

WEATHERBENCH_TASKS = ("haze", "rain", "snow")
WEATHERBENCH_LAYOUT = """\
  ROOT/{train,test}/{haze,rain,snow}/{input,target}/NAME   (folder names configurable; x.jpg <-> x.png allowed)
  ROOT/{haze,rain,snow}/{input,target}/NAME                (the released test set: no split folder)"""


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
    task = check_label(task)
    if list_file is None and not (root / "allweather.txt").is_file():
        folder = require_dir(root / "allweather" / "input", "no list file ROOT/allweather.txt either",
                             ALLWEATHER_LAYOUT)
        inputs = scan_task((task,), folder, report, recursive=True)
    else:
        list_path = root / (list_file if list_file is not None else "allweather.txt")
        if not list_path.is_file():
            raise DataError(f"list file {list_path} does not exist; expected layout:\n{ALLWEATHER_LAYOUT}")
        report.list_files.append(list_path)
        entries = [root / entry for entry in read_list(list_path)]  # absolute entries stay absolute
        inputs = [path for path in entries if path.is_file()]
        report.missing_pairs += [MissingPair(task, path, list_path) for path in entries if not path.is_file()]
        if not entries:
            report.empty_tasks.append(EmptyTask(task, list_path))
    return {task: pair_records(task, inputs, same_name("input", "gt"), root, report)}


@register_benchmark("weatherbench", tasks=WEATHERBENCH_TASKS)
def weatherbench(root: Path, split: str, report: DataReport, *, tasks=WEATHERBENCH_TASKS, input_dir="input",
                 target_dir="target") -> TaskRecords:
    """WeatherBench (real haze/rain/snow) as a generic paired layout; one task per task folder.

    Layout: :data:`WEATHERBENCH_LAYOUT`. ROOT/SPLIT is used when it exists; otherwise the task folders may sit
    directly in ROOT, as in the released ``WeatherBench/{rain,haze,snow}/{input,target}`` that CPLIR's test config
    reads (ROOT then holds one split).
    Pairing: the same relative path in the target folder, else the one target with the same stem.

    Options:
        tasks: task folder names (they are also the task labels).
        input_dir, target_dir: names of the degraded and clean folders inside each task folder.
    """
    tasks = check_names("tasks", tasks)
    released = not (root / split).is_dir() and any((root / task).is_dir() for task in tasks)
    split_dir = root if released else require_dir(root / split, f"the {split} split", WEATHERBENCH_LAYOUT)
    records = {}
    for task in tasks:
        folder = require_dir(split_dir / task, f"the {task!r} task (or leave it out with tasks=)",
                             WEATHERBENCH_LAYOUT)
        inputs = require_dir(folder / input_dir, "degraded images", WEATHERBENCH_LAYOUT)
        targets = require_dir(folder / target_dir, "clean images", WEATHERBENCH_LAYOUT)
        records[task] = stem_pairs(task, inputs, targets, root, report)
    return records
