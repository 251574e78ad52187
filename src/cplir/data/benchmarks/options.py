"""Validation of benchmark options (task subsets, folder names, labels): a bad value is a DataError naming it."""

from typing import List, Sequence

from cplir.errors import DataError


def choose_subset(option: str, values, valid: Sequence) -> List:
    """Validate a subset option (one name or a sequence of names) against ``valid``; duplicates dropped."""
    values = [values] if isinstance(values, str) else list(values)
    unknown = [v for v in values if v not in valid]
    if unknown or not values:
        raise DataError(f"bad value {values!r} for option {option}: choose a non-empty subset of {list(valid)}")
    return list(dict.fromkeys(values))  # drop duplicates, keep order


def check_names(option: str, values) -> List[str]:
    """Validate an option holding one or more non-empty names (folder names, task labels)."""
    values = [values] if isinstance(values, str) else list(values)
    if not values or not all(isinstance(v, str) and v for v in values):
        raise DataError(f"bad value {values!r} for option {option}: give one or more non-empty names")
    return list(dict.fromkeys(values))


def check_label(task) -> str:
    """Validate option ``task``: a non-empty task label."""
    if not isinstance(task, str) or not task:
        raise DataError(f"bad value {task!r} for option task: give a non-empty task label")
    return task
