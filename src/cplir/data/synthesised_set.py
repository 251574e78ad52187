"""The on-disk format of a synthesised (offline) degraded set, written by :mod:`cplir.data.synthesize`.

    OUT/synthesis.json      settings: format, source folder, tasks, level, SR mode, JPEG codec, base seed
    OUT/manifest.jsonl      one JSON object per image: task, clean (relative to the source folder), degraded
                            (relative to OUT), seed (the seed material of its generator), params (recipe and drawn)
    OUT/<task>/<clean path>.png
"""

import json
from pathlib import Path
from typing import Dict, Tuple

from cplir.errors import DataError

SETTINGS_FILE = "synthesis.json"
MANIFEST_FILE = "manifest.jsonl"
FORMAT = "cplir-synthesis-1"


def degraded_path(task: str, key: str) -> str:
    """Where the degraded image of clean image ``key`` (source-relative POSIX path) goes, relative to OUT."""
    return (Path(task) / key).with_suffix(".png").as_posix()


def read_settings(out: Path) -> dict:
    """The settings of the set in ``out``; DataError when it holds none."""
    path = Path(out) / SETTINGS_FILE
    if not path.is_file():
        raise DataError(f"{out} holds no synthesised set ({SETTINGS_FILE} is missing); write one with "
                        "`cplir data synthesize SOURCE OUT`")
    try:
        settings = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is damaged ({err}); synthesise the set into a new folder") from err
    if not isinstance(settings, dict) or settings.get("format") != FORMAT:
        raise DataError(f"{path} is not a cplir synthesis record")
    return settings


def read_manifest(out: Path) -> Dict[Tuple[str, str], dict]:
    """Manifest entries by (task, clean key), the last line for a key winning. A last line cut short by an
    interrupted run is dropped from the file, so the next run appends cleanly."""
    path = Path(out) / MANIFEST_FILE
    if not path.is_file():
        return {}
    text = path.read_text()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        path.write_text(text)
    entries = {}
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            entry = json.loads(line)
            entries[(entry["task"], entry["clean"])] = entry
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise DataError(f"{path} line {number} is damaged ({err}); remove that line and synthesise again "
                            "(the image is recreated identically)") from err
    return entries
