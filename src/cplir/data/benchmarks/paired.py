"""Any two folders of degraded and clean images: the layout for a data set without an adapter of its own."""

from pathlib import Path

from cplir.data.benchmarks.options import check_label
from cplir.data.benchmarks.pairing import require_dir, stem_pairs
from cplir.data.benchmarks.registry import register_benchmark
from cplir.data.benchmarks.report import DataReport
from cplir.data.records import TaskRecords


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
    task = check_label(task)
    layout = f"  ROOT/{input_dir}/NAME <-> ROOT/{target_dir}/NAME"
    return {task: stem_pairs(task, require_dir(root / input_dir, "degraded images", layout),
                             require_dir(root / target_dir, "clean images", layout), root, report)}
