"""Resuming a run: the config given now must describe the run the checkpoint continues.

A training checkpoint carries the config it was trained with. Whatever shapes the training trajectory (model,
seed, training data, loss, optimiser, schedule, EMA, precision) must be the same when a run resumes; a
difference stops the resume with the list of differing keys, unless the user accepts it
(``--allow-config-change``), and then both configs are kept. What only says how long to train (``train.iterations``
may be extended), how often to log, validate and save, how data is loaded, where the run lives and what
validation measures may change freely; those changes are logged too.

The cosine schedule's length is compared as it acts: under ``schedule: cosine`` (or ``cosine_annealing``),
``schedule_iters: 0`` means "the training length", so extending ``train.iterations`` under it stretches the
schedule, a trajectory change.
"""

from typing import Any, Dict, List, Tuple

from cplir.config import Config, config_from_dict, to_dict
from cplir.errors import CheckpointError, ConfigError

# Keys (and whole sections) that do not change what the weights become.
FREE_KEYS = ("name", "output_dir", "reproduces", "train.iterations", "train.log_every", "train.val_every",
             "train.save_every", "train.keep_checkpoints", "data.num_workers", "data.max_val_images", "data.test",
             "eval")

Change = Tuple[str, Any, Any]


def _flatten(tree: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and name != "data.train.options":
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _as_run(tree: dict) -> Dict[str, Any]:
    """A config mapping with defaults filled in (a checkpoint from an older version lacks newer keys) and the
    schedule length made explicit, flattened to dotted keys."""
    try:
        tree = to_dict(config_from_dict(tree))
    except ConfigError:  # validation grew stricter since the checkpoint was written: compare as written
        pass
    flat = _flatten(tree)
    if (flat.get("train.optim.schedule", "cosine") in ("cosine", "cosine_annealing")
            and flat.get("train.optim.schedule_iters") == 0):
        flat["train.optim.schedule_iters"] = flat.get("train.iterations")
    return flat


def _free(key: str) -> bool:
    return any(key == free or key.startswith(free + ".") for free in FREE_KEYS)


def config_changes(saved: dict, current: Config) -> List[Change]:
    """``(key, checkpoint value, current value)`` for every dotted key that differs."""
    if not isinstance(saved, dict):
        raise CheckpointError("the checkpoint's config entry is damaged (not a mapping)")
    before, after = _as_run(saved), _as_run(to_dict(current))
    missing = "(not set)"
    return [(key, before.get(key, missing), after.get(key, missing)) for key in sorted(set(before) | set(after))
            if before.get(key, missing) != after.get(key, missing)]


def _show(change: Change) -> str:
    key, old, new = change
    text = f"{key} {old!r} -> {new!r}"
    if key == "train.optim.schedule_iters":
        text += f" (0 means train.iterations; keep the schedule with --set train.optim.schedule_iters={old})"
    return text


def check_resume_config(saved: dict, current: Config, allow_change: bool = False) -> List[Change]:
    """Every difference between the checkpoint's config and ``current``; raises :class:`ConfigError` listing the
    trajectory-changing ones unless ``allow_change``."""
    changes = config_changes(saved, current)
    shaping = [change for change in changes if not _free(change[0])]
    if shaping and not allow_change:
        raise ConfigError("the config differs from the checkpoint's in what shapes training: "
                          + "; ".join(_show(change) for change in shaping)
                          + ". Resume with the run's own config (config.yaml in its run folder), or pass "
                            "--allow-config-change to continue with the new values (both configs are kept)")
    return changes
