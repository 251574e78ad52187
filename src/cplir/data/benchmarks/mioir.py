"""MiOIR seven-task benchmark: seven degradations synthesised from clean images (DF2K in the paper)."""

from pathlib import Path

from cplir.data.benchmarks.options import choose_subset
from cplir.data.benchmarks.pairing import scan_task, synthesised_records
from cplir.data.benchmarks.registry import TaskRecipe, register_benchmark
from cplir.data.benchmarks.report import DataReport
from cplir.data.degradations import DEGRADATION_PARAMS, MIOIR_TASKS
from cplir.data.degradations.resize import SR_MODES
from cplir.data.records import TaskRecords
from cplir.errors import DataError


def mioir_recipe(task: str, level: str = "id", sr_mode: str = "torch") -> TaskRecipe:
    """Recipe of MiOIR task ``task``: the degradation of that name at ``level`` (SR has a single level, so its
    params hold no level) and, for ``sr``, the bicubic ``sr_mode``."""
    params = {"level": level} if "level" in DEGRADATION_PARAMS[task] else {}
    if task == "sr":
        params["mode"] = sr_mode
    return TaskRecipe(task, params)


@register_benchmark("mioir_seven_task", tasks=MIOIR_TASKS,
                    recipes=lambda task, split: {task: mioir_recipe(task)})
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
    tasks = choose_subset("tasks", tasks, MIOIR_TASKS)
    if level not in ("id", "ood"):
        raise DataError(f"bad value {level!r} for option level: choose 'id' or 'ood'")
    if sr_mode not in SR_MODES:
        raise DataError(f"bad value {sr_mode!r} for option sr_mode: choose one of {', '.join(SR_MODES)}")
    clean = scan_task(tasks, root, report, recursive=True)
    records = {}
    for task in tasks:
        recipe = mioir_recipe(task, level, sr_mode)
        records[task] = synthesised_records(task, clean, recipe.synth, recipe.params, root)
    return records
