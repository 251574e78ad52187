"""MiOIR seven-task benchmark: seven degradations synthesised from clean images (DF2K in the paper), on the fly
(``mioir_seven_task``) or read from a set written once by ``cplir data synthesize`` (``mioir_synthesised``, as
MiOIR trains and tests on fixed degraded sets)."""

from pathlib import Path

from cplir.data.benchmarks.options import choose_subset
from cplir.data.benchmarks.pairing import scan_task, synthesised_records
from cplir.data.benchmarks.registry import TaskRecipe, register_benchmark
from cplir.data.benchmarks.report import DataReport, EmptyTask, MissingPair
from cplir.data.degradations import DEGRADATION_PARAMS, MIOIR_TASKS
from cplir.data.degradations.jpeg import JPEG_CODECS
from cplir.data.degradations.resize import SR_MODES
from cplir.data.records import PairRecord, TaskRecords
from cplir.data.synthesised_set import MANIFEST_FILE, read_manifest, read_settings
from cplir.errors import DataError


def mioir_recipe(task: str, level: str = "id", sr_mode: str = "torch", jpeg_codec: str = "diffjpeg") -> TaskRecipe:
    """Recipe of MiOIR task ``task``: the degradation of that name at ``level`` (SR has a single level, so its
    params hold no level), for ``sr`` the bicubic ``sr_mode``, for ``jpeg`` the ``jpeg_codec``."""
    params = {"level": level} if "level" in DEGRADATION_PARAMS[task] else {}
    if task == "sr":
        params["mode"] = sr_mode
    if task == "jpeg":
        params["codec"] = jpeg_codec
    return TaskRecipe(task, params)


@register_benchmark("mioir_seven_task", tasks=MIOIR_TASKS,
                    recipes=lambda task, split: {task: mioir_recipe(task)})
def mioir_seven_task(root: Path, split: str, report: DataReport, *, tasks=MIOIR_TASKS, level="id",
                     sr_mode="torch", jpeg_codec="diffjpeg") -> TaskRecords:
    """MiOIR seven-task benchmark synthesised from clean images found anywhere under ROOT (DF2K in the paper).

    ROOT holds one split (``split`` does not change the layout). Every clean image gives one record per task of
    ``sr, blur, noise, jpeg, rain, haze, lowlight`` with ``synth`` = the task name.

    Options:
        tasks: subset of the seven tasks.
        level: ``"id"`` (in-distribution) or ``"ood"`` (harder ranges), stored as ``params["level"]``; SR has a
            single level, so its params hold no level.
        sr_mode: ``"torch"`` (MiOIR's bicubic without antialiasing) or ``"pil"``, stored as ``params["mode"]``
            of the ``sr`` records.
        jpeg_codec: ``"diffjpeg"`` (MiOIR's DiffJPEG algorithm) or ``"pillow"`` (a libjpeg file), stored as
            ``params["codec"]`` of the ``jpeg`` records.
    """
    tasks = choose_subset("tasks", tasks, MIOIR_TASKS)
    if level not in ("id", "ood"):
        raise DataError(f"bad value {level!r} for option level: choose 'id' or 'ood'")
    if sr_mode not in SR_MODES:
        raise DataError(f"bad value {sr_mode!r} for option sr_mode: choose one of {', '.join(SR_MODES)}")
    if jpeg_codec not in JPEG_CODECS:
        raise DataError(f"bad value {jpeg_codec!r} for option jpeg_codec: choose one of {', '.join(JPEG_CODECS)}")
    clean = scan_task(tasks, root, report, recursive=True)
    records = {}
    for task in tasks:
        recipe = mioir_recipe(task, level, sr_mode, jpeg_codec)
        records[task] = synthesised_records(task, clean, recipe.synth, recipe.params, root)
    return records


@register_benchmark("mioir_synthesised", tasks=MIOIR_TASKS)
def mioir_synthesised(root: Path, split: str, report: DataReport, *, tasks=None, clean_root=None) -> TaskRecords:
    """A seven-task set written by ``cplir data synthesize`` (ROOT = its output folder): each degraded image of the
    manifest paired with its clean image in the source folder the set was made from.

    ROOT holds one split (``split`` does not change the layout).

    Options:
        tasks: subset of the tasks the set holds (default: all of them).
        clean_root: the folder of the clean images when it has moved since the synthesis (default: the source
            folder recorded in ``synthesis.json``).
    """
    settings = read_settings(root)
    tasks = choose_subset("tasks", settings["tasks"] if tasks is None else tasks, tuple(settings["tasks"]))
    source = Path(clean_root).expanduser() if clean_root is not None else Path(settings["source"])
    records: TaskRecords = {task: [] for task in tasks}
    for (task, key), entry in read_manifest(root).items():
        if task not in records:
            continue
        clean, degraded = source / key, root / entry["degraded"]
        for path, referenced_by in ((clean, degraded), (degraded, root / MANIFEST_FILE)):
            if not path.is_file():
                report.missing_pairs.append(MissingPair(task, path, referenced_by))
                break
        else:
            records[task].append(PairRecord(task=task, clean=clean, degraded=degraded, key=entry["degraded"]))
    for task, items in records.items():
        if not items and not any(m.task == task for m in report.missing_pairs):
            report.empty_tasks.append(EmptyTask(task, root / task))
        items.sort(key=lambda r: r.key)
    return records
