"""Configuration: YAML files loaded into typed dataclasses.

* ``_base_: other.yaml`` (or a list) inherits from files relative to this one; mappings merge key by key
  (unless they hold ``_delete_: true``), any other value replaces the inherited one.
* ``--set a.b=c`` overrides are parsed as YAML scalars/lists (``yaml.safe_load``, never ``eval``).
* Unknown keys, wrong types and out-of-range values raise :class:`ConfigError` naming the key; every number must
  be finite, and an empty file is an error (not the defaults).
The resolved config (:func:`to_dict`) is written into every run folder and every checkpoint.
"""

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import re

import yaml

from cplir.engine.negative_models import DEFAULT_DECAY, DEFAULT_INTERVALS, DEFAULT_START
from cplir.engine.negative_refresh import DEFAULT_ADAPTIVE_DECAY, DEFAULT_THRESHOLD, REFRESH_RULES
from cplir.errors import ConfigError
from cplir.losses import contrastive_prompt as cpr_defaults
from cplir.losses import model_contrastive as spn_defaults
from cplir.losses.vgg import ARCHS as VGG_ARCHS
from cplir.losses.vgg import DEFAULT_LAYERS
from cplir.engine.schedule import SCHEDULES
from cplir.inference.padding import PAD_MODES
from cplir.metrics.lpips import NETS as LPIPS_NETS
from cplir.metrics.protocols import PROTOCOLS
from cplir.models.model_file import WEIGHT_CHOICES


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``2e-4`` (no dot) as a string; researchers write learning rates that way."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


DELETE_MARKER = "_delete_"


def parse_yaml(text: str):
    return yaml.load(text, Loader=_Loader)


@dataclass
class ModelConfig:
    name: str = "cplir"
    args: Dict[str, Any] = field(default_factory=dict)  # keyword arguments of build_model


@dataclass
class DataSource:
    """One benchmark split: ``load_benchmark(benchmark, root, split, **options)``; ``name`` names a test set in
    logs and results (empty: derived, see :func:`name_test_sets`)."""

    benchmark: str = "embedded"
    root: str = "embedded"
    split: str = "train"
    options: Dict[str, Any] = field(default_factory=dict)
    name: str = ""


@dataclass
class DataConfig:
    train: DataSource = field(default_factory=DataSource)
    test: List[DataSource] = field(default_factory=list)
    repeats: Dict[str, int] = field(default_factory=dict)  # task -> replication factor (empty: benchmark default)
    crop_size: int = 128
    batch_size: int = 8  # per process
    num_workers: int = 2
    max_val_images: int = 0  # 0: every test image


@dataclass
class OptimConfig:
    lr: float = 2e-4
    weight_decay: float = 0.01  # torch AdamW default, as PromptIR's optimiser
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    # "cosine" (warm-up + one cosine) | "cosine_restart" (BasicSR's restarts) | "cosine_annealing" (torch's
    # CosineAnnealingLR, periodic past schedule_iters) | "multistep" (lr·gamma at each milestone)
    schedule: str = "cosine"
    warmup_iters: int = 0
    schedule_iters: int = 0  # length of the cosine schedule (cosine_annealing: T_max); 0: the training length
    periods: List[int] = field(default_factory=list)  # cosine_restart: iterations of each cycle
    restart_weights: List[float] = field(default_factory=list)  # cosine_restart: peak factor per cycle; []: all 1
    milestones: List[int] = field(default_factory=list)  # multistep: iterations where the lr is multiplied by gamma
    gamma: float = 0.5  # multistep: the factor
    min_lr: float = 0.0
    grad_clip: float = 0.0  # max gradient norm; 0: no clipping


@dataclass
class CPRConfig:
    """Contrastive Prompt Regularisation (CPL Sec. III-C; docs/design.md §3)."""

    enabled: bool = False
    alpha: float = cpr_defaults.DEFAULT_ALPHA
    num_negatives: int = cpr_defaults.DEFAULT_NUM_NEGATIVES
    form: str = "paper"  # cpr_defaults.FORMS
    distance: str = "l2"  # cpr_defaults.DISTANCES
    channel_norm: Optional[bool] = None  # None: the form's choice (paper: off, code: on)
    features: str = "vgg"  # feature space φ: "vgg" (the papers'), "vgg_standardized" | "pyramid" (download-free)
    vgg: str = "vgg19"
    vgg_weights: str = ""  # path, "" to search the usual places, or "random" (tests and the embedded demo only)
    layers: List[str] = field(default_factory=lambda: list(DEFAULT_LAYERS))
    layer_weights: List[float] = field(default_factory=lambda: list(cpr_defaults.DEFAULT_LAYER_WEIGHTS))
    batched_negatives: bool = True  # decode negatives from the positive's encoder features (else m full passes)
    negatives_per_pass: int = 0  # negatives per decoder pass; 0: all m on CUDA, 1 on the CPU (faster there)
    negative_grad: bool = False  # gradient through the negatives (the paper text); off: constants (published code)


@dataclass
class SPNConfig:
    """Self-Prior guided Negative loss of model contrastive learning (MCLIR; docs/design.md §4)."""

    enabled: bool = False
    lam: float = spn_defaults.DEFAULT_LAMBDA
    intervals: List[int] = field(default_factory=lambda: list(DEFAULT_INTERVALS))
    decays: List[float] = field(default_factory=lambda: [DEFAULT_DECAY] * len(DEFAULT_INTERVALS))
    start: float = DEFAULT_START
    refresh: str = "interval"  # "interval" (the published config) | "adaptive" (the published code's variant)
    adaptive_threshold: float = DEFAULT_THRESHOLD  # adaptive: refresh when the output error's spread exceeds it
    adaptive_decay: float = DEFAULT_ADAPTIVE_DECAY  # adaptive: d of each refresh
    vgg_weights: str = ""
    layers: List[str] = field(default_factory=lambda: list(spn_defaults.DEFAULT_LAYERS))
    layer_weights: List[float] = field(default_factory=lambda: list(spn_defaults.DEFAULT_LAYER_WEIGHTS))


@dataclass
class LossConfig:
    l1: float = 1.0
    ssim: float = 0.0  # weight of 1 − SSIM (IDT's training loss); 0 disables it
    cpr: CPRConfig = field(default_factory=CPRConfig)
    spn: SPNConfig = field(default_factory=SPNConfig)


@dataclass
class TrainConfig:
    iterations: int = 1000
    ema_decay: float = 0.999  # 0 disables EMA weights
    amp: str = "none"  # "none" | "bf16" | "fp16" (fp16 needs CUDA)
    log_every: int = 10
    val_every: int = 500  # 0: validate only at the end
    save_every: int = 500
    keep_checkpoints: int = 3
    optim: OptimConfig = field(default_factory=OptimConfig)


@dataclass
class LPIPSConfig:
    """LPIPS (Zhang et al., CVPR 2018) next to PSNR/SSIM; ``n/a`` in the results when its weights are missing."""

    enabled: bool = False
    net: str = "alex"  # "alex" | "vgg": the trunk, with the published v0.1 linear heads of that trunk
    backbone_weights: str = ""  # torchvision file; "": $CPLIR_ALEXNET_WEIGHTS / $CPLIR_VGG16_WEIGHTS, torch hub
    head_weights: str = ""  # the lpips package's alex.pth / vgg.pth; "": $CPLIR_LPIPS_{ALEX,VGG}_HEADS, hub, package


@dataclass
class EvalConfig:
    protocol: str = "promptir"  # "promptir" | "basicsr_rgb" | "basicsr_y"
    crop_border: int = 0
    pad_multiple: int = 8
    pad_mode: str = "reflect"  # how inputs are padded to pad_multiple: "reflect" | "replicate" | "constant"
    tile: int = 0  # > 0: restore test images in overlapping tiles of this side (IDT takes 128x128 only); 0: whole
    tile_overlap: int = 32  # least overlap of neighbouring tiles in input pixels
    weights: str = "ema"  # which weights of a checkpoint `cplir test` loads: "ema" (params_ema) | "model" (params)
    lpips: LPIPSConfig = field(default_factory=LPIPSConfig)


@dataclass
class Config:
    name: str = "run"
    seed: int = 0
    output_dir: str = "runs"
    reproduces: str = ""  # which table / section of which paper this config reproduces
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name


# --- loading ---------------------------------------------------------------------------------------------------
def _yaml_problem(err: yaml.YAMLError) -> str:
    """One line: what the YAML parser found and where."""
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(err, 'problem', None) or str(err).splitlines()[0]}{where}"


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {err.start}); save it as UTF-8") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {_yaml_problem(err)}") from err
    if data is None:
        raise ConfigError(f"config file {path} is empty; start from one of configs/ (e.g. "
                          "configs/embedded-three-task-cpl.yaml)")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def merge(base: dict, override: dict) -> dict:
    """Deep merge: mappings merge key by key, everything else in ``override`` replaces ``base``.

    A mapping in ``override`` holding ``_delete_: true`` replaces the inherited mapping instead (the MMCV config
    convention), e.g. ``model.args`` of another backbone, whose keyword arguments must not carry over. The marker
    stays in the merged tree (so the file keeps that meaning when it is itself a base) until
    :func:`config_from_dict` drops it.
    """
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not value.get(DELETE_MARKER):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _drop_delete_markers(data):
    if isinstance(data, dict):
        return {k: _drop_delete_markers(v) for k, v in data.items() if k != DELETE_MARKER}
    if isinstance(data, list):
        return [_drop_delete_markers(v) for v in data]
    return data


def load_yaml_tree(path: Union[str, Path], _seen: Sequence[Path] = ()) -> dict:
    """The raw mapping of a config file with its ``_base_`` chain resolved."""
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError(f"_base_ cycle: {' -> '.join(str(p) for p in (*_seen, path))}")
    data = _read_yaml(path)
    bases = data.pop("_base_", [])
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: _base_ must be a file name or a list of file names, got {bases!r}")
    merged: dict = {}
    for base in bases:
        merged = merge(merged, load_yaml_tree(path.parent / base, (*_seen, path)))
    return merge(merged, data)


def apply_overrides(data: dict, overrides: Sequence[str]) -> dict:
    """Apply ``a.b=c`` overrides; values are parsed as YAML (``1e-4``, ``[1, 2]``, ``true``)."""
    data = merge({}, data)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like section.key=value, e.g. train.iterations=100")
        try:
            value = parse_yaml(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: cannot parse the value ({_yaml_problem(err)})") from err
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if isinstance(node, list):
                node = node[_list_index(node, part, item)]
                continue
            node = node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        if isinstance(node, list):
            node[_list_index(node, parts[-1], item)] = value
        else:
            node[parts[-1]] = value
    return data


def _list_index(items: list, part: str, item: str) -> int:
    """``data.test.0.root=...``: a numeric path component indexes into a list."""
    if not part.isdigit() or int(part) >= len(items):
        raise ConfigError(f"override {item!r}: {part!r} is not an index of a list with {len(items)} entries")
    return int(part)


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value, tp, where: str):
    """``value`` checked and converted to the annotation ``tp``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Union or (hasattr(types, "UnionType") and isinstance(tp, getattr(types, "UnionType"))):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0])
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping (section), got {value!r}")
        return _build(tp, value, where)
    if origin in (list, List, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)[:1] or (Any,)
        return [_convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, Dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        key_tp, val_tp = typing.get_args(tp) or (Any, Any)
        return {_convert(k, key_tp, f"{where} key"): _convert(v, val_tp, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported config type {_type_name(tp)}")


def _build(cls, data: dict, where: str = ""):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; valid keys: {', '.join(names)}"
            raise ConfigError(f"unknown config key {where + '.' if where else ''}{key}{hint}")
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


CHOICES = {
    "train.amp": ("none", "bf16", "fp16"),
    "eval.protocol": PROTOCOLS,
    "eval.pad_mode": PAD_MODES,
    "eval.weights": WEIGHT_CHOICES,
    "eval.lpips.net": LPIPS_NETS,
    "train.optim.schedule": tuple(SCHEDULES),
    "loss.cpr.form": cpr_defaults.FORMS,
    "loss.cpr.distance": cpr_defaults.DISTANCES,
    "loss.cpr.vgg": VGG_ARCHS,
    "loss.cpr.features": cpr_defaults.FEATURES,
    "loss.spn.refresh": tuple(REFRESH_RULES),
}


def validate(cfg: Config) -> Config:
    """Range and consistency checks that types alone do not catch."""
    def need(ok: bool, msg: str):
        if not ok:
            raise ConfigError(msg)

    for key, options in CHOICES.items():
        value = cfg
        for part in key.split("."):
            value = getattr(value, part)
        need(value in options, f"{key} must be one of {', '.join(options)}; got {value!r}")
    need(_plain_name(cfg.name), f"name must be a plain folder name inside output_dir (no '/', '..' or absolute "
                                f"path), got {cfg.name!r}")
    t, o, d = cfg.train, cfg.train.optim, cfg.data
    need(t.iterations >= 1, f"train.iterations must be at least 1, got {t.iterations}")
    need(o.lr > 0, f"train.optim.lr must be positive, got {o.lr}")
    need(0 <= o.warmup_iters <= max(o.schedule_iters, t.iterations),
         f"train.optim.warmup_iters must be between 0 and the schedule length, got {o.warmup_iters}")
    if o.schedule == "cosine_restart":
        need(len(o.periods) >= 1 and all(p >= 1 for p in o.periods),
             "train.optim.periods must list the length (>= 1 iterations) of every cosine_restart cycle")
        need(not o.restart_weights or len(o.restart_weights) == len(o.periods),
             "train.optim.restart_weights needs one value per period (or none: all 1)")
    if o.schedule == "multistep":
        need(len(o.milestones) >= 1 and all(m >= 1 for m in o.milestones),
             "train.optim.milestones must list the iterations (>= 1) where the multistep lr drops")
        need(0 < o.gamma <= 1, f"train.optim.gamma must be in (0, 1], got {o.gamma}")
    need(len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), "train.optim.betas must be two numbers in [0, 1)")
    need(o.grad_clip >= 0, "train.optim.grad_clip must be >= 0 (0 disables clipping)")
    need(0 <= t.ema_decay < 1, f"train.ema_decay must be in [0, 1), got {t.ema_decay}")
    need(t.log_every >= 1 and t.val_every >= 0 and t.save_every >= 0, "train.log_every must be >= 1, "
         "train.val_every and train.save_every >= 0")
    need(d.batch_size >= 1, f"data.batch_size must be at least 1, got {d.batch_size}")
    need(cfg.eval.pad_multiple >= 1, f"eval.pad_multiple must be at least 1, got {cfg.eval.pad_multiple}")
    need(d.crop_size >= 8 and d.crop_size % cfg.eval.pad_multiple == 0,
         f"data.crop_size must be a multiple of {cfg.eval.pad_multiple} and >= 8, got {d.crop_size}")
    need(d.num_workers >= 0, "data.num_workers must be >= 0")
    need(all(r >= 1 for r in d.repeats.values()), "data.repeats values must be >= 1")
    need(cfg.eval.crop_border >= 0, "eval.crop_border must be >= 0")
    need(cfg.eval.tile >= 0 and cfg.eval.tile_overlap >= 0 and (cfg.eval.tile == 0 or cfg.eval.tile_overlap
                                                                 < cfg.eval.tile),
         "eval.tile must be >= 0 (0: whole images) and eval.tile_overlap >= 0 and smaller than the tile")
    need(cfg.loss.l1 >= 0 and cfg.loss.ssim >= 0, "loss.l1 and loss.ssim are weights: >= 0 (0 disables the term)")
    cpr, spn = cfg.loss.cpr, cfg.loss.spn
    need(cpr.num_negatives >= 1, f"loss.cpr.num_negatives must be at least 1, got {cpr.num_negatives}")
    need(0 <= cpr.negatives_per_pass <= cpr.num_negatives,
         f"loss.cpr.negatives_per_pass must be between 0 (auto) and num_negatives, got {cpr.negatives_per_pass}")
    need(len(cpr.layers) == len(cpr.layer_weights), "loss.cpr.layers and loss.cpr.layer_weights differ in length")
    need(len(spn.layers) == len(spn.layer_weights), "loss.spn.layers and loss.spn.layer_weights differ in length")
    need(len(spn.intervals) >= 1 and all(i >= 1 for i in spn.intervals),
         "loss.spn.intervals must list at least one interval, each >= 1 (its length is K, the number of negatives)")
    need(len(spn.decays) in (1, len(spn.intervals)), "loss.spn.decays needs one value or one per interval")
    need(all(0 <= v <= 1 for v in (*spn.decays, spn.start, spn.adaptive_decay)),
         "loss.spn.decays, loss.spn.start and loss.spn.adaptive_decay must lie in [0, 1]")
    need(spn.adaptive_threshold >= 0, f"loss.spn.adaptive_threshold must be >= 0, got {spn.adaptive_threshold}")
    name_test_sets(d.test)
    check_model(cfg)
    return cfg


_SET_NAME = re.compile(r"[A-Za-z0-9_.=+-]+")
_NOT_IN_SET_NAME = re.compile(r"[^A-Za-z0-9_.=+-]+")


def _plain_name(name: str) -> bool:
    """A single folder name: not empty, not ``.``/``..``, no separator (so it cannot leave its parent)."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0")


def name_test_sets(sources: Sequence[DataSource]) -> List[str]:
    """The name of each test set in logs, results and image folders.

    An explicit ``name`` wins. Otherwise one set alone is named by its benchmark; several are named by benchmark,
    then what tells sets of one benchmark apart: the root's last folder, the split, and each option whose value
    differs (a list file by its stem), joined by ``-``. Two sources with the same benchmark, root, split and
    options are the same test set, and two sets may not share a name: both are refused.
    """
    seen: Dict[str, int] = {}
    for i, source in enumerate(sources):
        identity = repr((source.benchmark, source.root, source.split, sorted(source.options.items(), key=str)))
        if identity in seen:
            raise ConfigError(f"data.test[{seen[identity]}] and data.test[{i}] are the same test set (benchmark "
                              f"{source.benchmark!r}, root {source.root!r}, split, options); remove one")
        seen[identity] = i
    names = [source.name or _derived_name(source, sources) for source in sources]
    for i, name in enumerate(names):
        if not _SET_NAME.fullmatch(name) or name in (".", ".."):
            raise ConfigError(f"data.test[{i}].name {name!r} must be a plain name of letters, digits and _ - . = +")
        if names.index(name) != i:
            raise ConfigError(f"data.test[{names.index(name)}] and data.test[{i}] are both named {name!r}; give "
                              "each test set its own data.test[i].name")
    return names


def _derived_name(source: DataSource, sources: Sequence[DataSource]) -> str:
    peers = [s for s in sources if s.benchmark == source.benchmark and not s.name]
    if len(sources) == 1 or len(peers) == 1:
        return source.benchmark
    parts = [source.benchmark]
    if len({s.root for s in peers}) > 1:
        parts.append(Path(source.root).name or source.root.strip("/"))
    if len({s.split for s in peers}) > 1:
        parts.append(source.split)
    for key in sorted({k for s in peers for k in s.options}, key=str):
        values = [s.options.get(key) for s in peers]
        if any(v != values[0] for v in values) and key in source.options:
            value = source.options[key]
            is_file = isinstance(value, str) and ("/" in value or "." in value)
            parts.append(Path(value).stem if is_file else f"{key}={value}")
    return _NOT_IN_SET_NAME.sub("_", "-".join(str(p) for p in parts)).strip("_")


# What check_model learns from a model's skeleton, per (name, arguments): its size multiple and why CPR cannot run
# on it (None when it can). Building a skeleton takes about 0.1 s of Python for a published-size network, and a
# program (a test session, a study) reads the same model's configs many times.
_MODEL_FACTS: Dict[tuple, tuple] = {}


def _model_facts(name: str, args: dict) -> tuple:
    from cplir.models import build_model_skeleton, check_supports_cpr

    key = (name, repr(sorted(args.items())))
    if key not in _MODEL_FACTS:
        net = build_model_skeleton(name, **args)  # bad arguments raise here and are not remembered
        try:
            check_supports_cpr(net, what=f"loss.cpr (model.name {name!r})")
            cpr_refusal = None
        except ConfigError as err:
            cpr_refusal = str(err)
        _MODEL_FACTS[key] = (int(getattr(net, "size_multiple", 1) or 1), cpr_refusal)
    return _MODEL_FACTS[key]


def check_model(cfg: Config) -> None:
    """Build the configured model on the meta device (no memory, no time) so bad ``model.args`` and a loss the
    model cannot serve (CPR without sparse prompts) fail when the config is read, not deep inside training."""
    multiple, cpr_refusal = _model_facts(cfg.model.name, cfg.model.args)
    if cfg.data.crop_size % multiple:
        raise ConfigError(f"data.crop_size {cfg.data.crop_size} must be a multiple of {multiple}, the size model "
                          f"{cfg.model.name!r} needs (training crops are not padded)")
    if cfg.loss.cpr.enabled and cpr_refusal:
        raise ConfigError(cpr_refusal)


def config_from_dict(data: dict) -> Config:
    return validate(_build(Config, _drop_delete_markers(data)))


def load_config(path: Union[str, Path], overrides: Sequence[str] = ()) -> Config:
    """Load ``path`` (with its ``_base_`` chain) and apply ``--set`` overrides; validated."""
    return config_from_dict(apply_overrides(load_yaml_tree(path), overrides))


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def dump_config(cfg: Config, path: Union[str, Path]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
