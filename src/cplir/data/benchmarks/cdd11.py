"""CDD-11 (OneRestore's composite degradation data set): 11 single and composite degradation classes."""

from pathlib import Path

from cplir.data.benchmarks.options import choose_subset
from cplir.data.benchmarks.pairing import pair_records, require_dir, same_name, scan_task
from cplir.data.benchmarks.registry import TaskRecipe, register_benchmark
from cplir.data.benchmarks.report import DataReport
from cplir.data.degradations import CDD11_CLASSES
from cplir.data.records import TaskRecords
from cplir.errors import DataError

CDD11_CLEAN = "clear"
CDD11_LAYOUT = """\
  ROOT/CDD-11_{train,test}/clear/NAME                  (ROOT may also be the CDD-11_{train,test} folder itself)
  ROOT/CDD-11_{train,test}/{low,haze,rain,snow,low_haze,low_rain,low_snow,haze_rain,haze_snow,low_haze_rain,
                            low_haze_snow}/NAME"""


# The stand-in of each class is the CDD-11-style composite of cplir.data.degradations.cdd11.
@register_benchmark("cdd11", tasks=CDD11_CLASSES, recipes=lambda cls, split: {cls: TaskRecipe(f"cdd11_{cls}")})
def cdd11(root: Path, split: str, report: DataReport, *, classes=CDD11_CLASSES) -> TaskRecords:
    """CDD-11: each degraded ``CLASS/NAME`` paired with ``clear/NAME``; one task per class.

    Layout: :data:`CDD11_LAYOUT`.
    Options:
        classes: subset of the 11 degraded classes.
    """
    classes = choose_subset("classes", classes, CDD11_CLASSES)
    expected = f"CDD-11_{split}"
    if (root / expected).is_dir():
        base = root / expected
    elif root.name.startswith("CDD-11_") and root.name != expected:
        raise DataError(f"{root} holds another split than {split!r}; point ROOT at its parent folder or at "
                        f"{root.parent / expected}")
    else:
        base = root
    require_dir(base / CDD11_CLEAN, f"clean images of the {split} split", CDD11_LAYOUT)
    records = {}
    for cls in classes:
        folder = require_dir(base / cls, f"images of class {cls!r} (or leave it out with classes=)", CDD11_LAYOUT)
        records[cls] = pair_records(cls, scan_task((cls,), folder, report), same_name(cls, CDD11_CLEAN), root,
                                    report)
    return records
