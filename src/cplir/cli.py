"""The ``cplir`` command line.

Every subcommand is a function ``cmd_<name>(args) -> int`` registered in :func:`build_parser`. Errors a user can
cause (:class:`cplir.errors.CplirError`) are printed as one line and exit with status 2. No command replaces an
existing result unless given ``--overwrite``.
"""

import argparse
import logging
import sys
from typing import List, Optional

from cplir import __version__
from cplir.errors import CplirError


EXAMPLES = """\
examples:
  cplir demo                                            train and report on the embedded data (CPU, minutes)
  cplir data check configs/cpl-three-task.yaml --set data.train.root=/data/promptir
  cplir train --config configs/cpl-three-task.yaml --set data.train.root=/data/promptir
  cplir train --config runs/cpl-three-task/config.yaml --resume auto
  cplir test --checkpoint runs/cpl-three-task/checkpoints/iter_00534120.pth
  cplir export --checkpoint runs/cpl-three-task/checkpoints/iter_00534120.pth --out cpl.safetensors

errors a user can cause print one line and exit with status 2; `cplir COMMAND --help` shows a command's options"""


def _model_kwargs(pairs: List[str]) -> dict:
    """``--arg key=value`` pairs parsed like config overrides (YAML values: ``16``, ``[1,1,1,1]``, ``2e-4``)."""
    from cplir.config import apply_overrides

    for pair in pairs:
        if "=" not in pair or pair.startswith("="):
            raise CplirError(f"model argument {pair!r} must look like key=value, e.g. dim=16")
    return apply_overrides({}, pairs)


def cmd_models(args) -> int:
    from cplir.errors import ConfigError
    from cplir.models import build_model_skeleton, list_models

    names = args.names or list_models()
    unknown = sorted(set(names) - set(list_models()))
    if unknown:
        raise CplirError(f"unknown model {', '.join(unknown)}; registered models: {', '.join(list_models())}")
    kwargs = _model_kwargs(args.arg)
    width = max(len(n) for n in names)
    lines, errors = [], []
    for name in names:
        if not args.count:
            lines.append(name)
            continue
        try:
            model = build_model_skeleton(name, **kwargs)
        except ConfigError as err:
            if args.names:  # a model the user named must take the arguments
                raise
            errors.append(str(err))
            lines.append(f"{name:{width}s} {'-':>12s} (cannot be built with these arguments: {err})")
            continue
        lines.append(f"{name:{width}s} {sum(p.numel() for p in model.parameters()):>12,d} parameters")
    if errors and len(errors) == len(names):  # the arguments fit no model at all: one error, not a table of them
        fitting = [e for e in errors if "unexpected keyword" not in e]
        raise CplirError(f"no registered model can be built with {', '.join(args.arg)}: {(fitting or errors)[0]}")
    print("\n".join(lines))
    return 0


def _load_config(args):
    from cplir.config import load_config

    return load_config(args.config, args.set)


def cmd_train(args) -> int:
    from cplir.engine.checkpoint import resolve_resume
    from cplir.engine.distributed import cleanup_distributed, init_distributed
    from cplir.engine.trainer import run_training

    cfg = _load_config(args)
    dist = init_distributed(args.device)
    try:
        resume = resolve_resume(args.resume, cfg.run_dir) if args.resume else None
        results = run_training(cfg, dist, resume=resume, progress=not args.no_progress,
                               allow_config_change=args.allow_config_change)
        if dist.is_main:
            print(f"run folder: {cfg.run_dir}")
            if results:
                print(f"final validation ({cfg.eval.protocol}): PSNR {results['psnr']:.2f} dB, "
                      f"SSIM {results['ssim']:.4f}")
    finally:
        cleanup_distributed()
    return 0


def cmd_test(args) -> int:
    from cplir.engine.distributed import cleanup_distributed
    from cplir.engine.testing import config_for_checkpoint, run_test

    cfg = config_for_checkpoint(args.checkpoint, args.config, args.set)
    try:
        run_test(cfg, args.checkpoint, out_dir=args.out, save_images=args.save_images, weights=args.weights,
                 device=args.device, overwrite=args.overwrite)
    finally:
        cleanup_distributed()
    return 0


def cmd_export(args) -> int:
    from cplir.engine.checkpoint import export_weights

    path = export_weights(args.checkpoint, args.out, args.weights, overwrite=args.overwrite, format=args.format,
                          name=args.arch, args=_model_kwargs(args.arg), say=print)
    print(f"wrote {path}")
    return 0


def cmd_restore(args) -> int:
    from cplir.inference.restore import run_restore

    tile = args.tile if args.tile in (None, "auto") else _positive_int(args.tile, "--tile")
    summary = run_restore(args.inputs, args.model, args.out, ext=args.ext, recursive=args.recursive,
                          overwrite=args.overwrite, progress=not args.no_progress, tile=tile,
                          tile_overlap=args.tile_overlap, ensemble=args.ensemble, precision=args.precision,
                          device=args.device, routing=args.routing, arch=args.arch, args=_model_kwargs(args.arg),
                          weights=args.weights)
    return 1 if summary.skipped else 0


def _positive_int(value: str, option: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise CplirError(f"{option} takes a positive number of pixels or 'auto', got {value!r}")
    return int(value)


def cmd_demo(args) -> int:
    from cplir.demo import run_demo

    return run_demo(args.out, overwrite=args.overwrite)


def cmd_study(args) -> int:
    from cplir.study import StudySettings, run_study

    given = {key: getattr(args, key) for key in ("iterations", "seeds", "variants", "evaluations")
             if getattr(args, key) is not None}
    settings = StudySettings(**given, overrides=args.set)
    return run_study(args.out, settings, jobs=args.jobs, threads=args.threads, progress=not args.no_progress)


def cmd_analyze(args) -> int:
    from cplir.analysis.analyze import run_analyze

    run_analyze(args.model, args.out, args.config, args.set, weights=args.weights, device=args.device,
                max_images=args.max_images, residual_images=args.residual_images,
                latency_repeats=args.latency_repeats, overwrite=args.overwrite)
    return 0


def cmd_data_check(args) -> int:
    from cplir.data_check import check_dataset

    return 0 if check_dataset(args.target, args.split, args.set).ok else 1


def cmd_data_preview(args) -> int:
    from cplir.data_check import preview

    print(f"wrote {preview(args.target, args.out, args.per_task, args.split, args.set, overwrite=args.overwrite)}")
    return 0


def cmd_data_synthesize(args) -> int:
    from cplir.data.synthesize import synthesize

    summary = synthesize(args.source, args.out, tasks=args.tasks.split(","), level=args.level, sr_mode=args.sr_mode,
                         jpeg_codec=args.jpeg_codec, seed=args.seed, progress=True)
    print(f"{summary.out}: wrote {summary.written} image(s), {summary.skipped} already there")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cplir", description="All-in-one image restoration: PromptIR, "
                                     "Contrastive Prompt Learning (CPL) and model contrastive learning (MCLIR).",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cplir {__version__}", help="print the version")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the registered models")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these models (default: all registered)")
    p.add_argument("--count", action="store_true", help="also build each model and count its parameters")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                   help="model keyword argument for --count, e.g. --arg dim=16 (repeatable)")
    p.set_defaults(func=cmd_models)

    def config_args(p, required: bool = True):
        p.add_argument("--config", required=required,
                       help="YAML config (see configs/)" if required else
                       "YAML config (default: the one the training checkpoint was trained with)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set train.iterations=100 (repeatable)")
        p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                       help="where to run (default: auto = CUDA when available)")

    def overwrite_arg(p, what: str):
        p.add_argument("--overwrite", action="store_true", help=f"replace {what} (default: refuse)")

    p = sub.add_parser("train", help="train a model from a config (run under torchrun for several GPUs)")
    config_args(p)
    p.add_argument("--resume", metavar="CHECKPOINT|auto",
                   help="continue from a training checkpoint, or 'auto' for the newest in the run folder")
    p.add_argument("--allow-config-change", action="store_true",
                   help="resume even though the config differs from the checkpoint's in what shapes training "
                        "(model, seed, data, loss, optimiser, schedule); both configs are kept")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to metrics.jsonl)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("test", help="evaluate a checkpoint on the config's test sets (paper-style table, "
                                    "per-image scores, the degraded input as baseline)")
    config_args(p, required=False)
    p.add_argument("--checkpoint", required=True, help="training checkpoint, model file or weights file")
    p.add_argument("--weights", choices=("ema", "model"),
                   help="which weights to evaluate: ema (a cplir checkpoint's ema, a BasicSR file's params_ema) "
                        "or model (model / params); default: the config's eval.weights")
    p.add_argument("--out", help="folder for results.json, results.csv and per_image.csv (default: "
                                 "CHECKPOINT_FOLDER/CHECKPOINT_NAME-test)")
    p.add_argument("--save-images", action="store_true", help="also write the restored images (OUT/images)")
    overwrite_arg(p, "results (and images) already in --out")
    p.set_defaults(func=cmd_test)

    def arch_args(p):
        p.add_argument("--arch", metavar="NAME", help="model name, when the file does not say it (published weights: "
                                                      "promptir = dense prompts, cplir = sparse)")
        p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                       help="model argument overriding the file's or the inferred one, e.g. --arg top_k=2")
        p.add_argument("--weights", choices=("ema", "model"), default="ema",
                       help="which weights of a training checkpoint (default: ema)")
        overwrite_arg(p, "existing output files (never the input itself)")

    p = sub.add_parser("export", help="write a self-describing model file (.safetensors, .pth) or an ONNX graph "
                                      "from a checkpoint, model file or published weights")
    p.add_argument("--checkpoint", required=True, help="training checkpoint, model file or published weights")
    p.add_argument("--out", required=True, help="output file: .safetensors, .pth or .onnx")
    p.add_argument("--format", choices=("safetensors", "pth", "onnx"), help="default: from the suffix of --out")
    arch_args(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("restore", help="restore image files, folders or glob patterns with a model file")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("--model", required=True, metavar="FILE", help="model file, training checkpoint or published "
                                                                  "weights (see docs/weights.md)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (not an input folder)")
    p.add_argument("--recursive", action="store_true", help="include sub-folders (and ** in patterns)")
    p.add_argument("--ext", default="png", help="output type: png (default), jpg, bmp, tif")
    p.add_argument("--tile", metavar="PIXELS|auto", help="restore in tiles of this side (auto: from free memory)")
    p.add_argument("--tile-overlap", type=int, default=32, help="least overlap of tiles in pixels (default 32)")
    p.add_argument("--ensemble", action="store_true", help="x8 self-ensemble (flips and rotations; 8x slower)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="arithmetic precision: fp32 (default), bf16 (autocast, CPU or GPU) or fp16 (GPU only)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--routing", choices=("auto", "global", "tile"), default="auto",
                   help="prompt routing of tiles: once on the whole image (global; default for sparse prompts) "
                        "or per tile")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    arch_args(p)
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("demo", help="train PromptIR and PromptIR+CPL on the embedded data and compare them")
    p.add_argument("--out", default="outputs/demo",
                   help="output folder (default: outputs/demo; an existing one is kept and a fresh name used)")
    p.add_argument("--overwrite", action="store_true", help="replace the demo's earlier results in --out")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("study", help="train PromptIR, SPM, CPL and CPL+MCLIR on the embedded data over several "
                                     "seeds and compare them (resumable; hours on a CPU)")
    p.add_argument("--out", default="outputs/study",
                   help="study folder (default: outputs/study); run the same command again to continue a study")
    p.add_argument("--iterations", type=int, help="training iterations of every run (default: the study's budget, "
                                                    "docs/evidence.md)")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds of every variant (default: 0 1)")
    p.add_argument("--variants", nargs="+", help="variants to train: promptir spm cpl cpl_vgg cpl_mclir (default: all)")
    p.add_argument("--evaluations", type=int, help="validations per run, for the curves (default: 5)")
    p.add_argument("--jobs", type=int, default=0,
                   help="runs trained at once (default: 0 = one per CPU core, at most 2)")
    p.add_argument("--threads", type=int, default=0,
                   help="threads of each run (default: 0 = the CPU cores shared out among the jobs)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every run, e.g. data.crop_size=48 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("analyze", help="what the prompts learned: routing entropy, selection, task-prompt mutual "
                                       "information, selection and residual maps, cost table")
    p.add_argument("--model", required=True, help="model file, training checkpoint or published weights")
    p.add_argument("--config", help="config whose test sets to use (default: the training checkpoint's own)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set data.max_val_images=4 (repeatable)")
    p.add_argument("--out", required=True, help="output folder for analysis.json, figures and report.html")
    p.add_argument("--weights", choices=("ema", "model"), default="ema",
                   help="which weights of a training checkpoint (default: ema)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where to run the model (default: auto, CUDA when available); latency is CPU time")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier analysis in --out")
    p.add_argument("--max-images", type=int, default=0, help="images per task (default: all)")
    p.add_argument("--residual-images", type=int, default=1, help="images per task with residual maps (default: 1)")
    p.add_argument("--latency-repeats", type=int, default=3,
                   help="timed CPU forward passes per cost-table row; 0 skips the latency (default: 3)")
    p.set_defaults(func=cmd_analyze)

    data = sub.add_parser("data", help="check, preview or synthesise a data set").add_subparsers(
        dest="data_command", required=True)
    target_help = "YAML config (its data.train and data.test sources) or the root folder of a data set"
    p = data.add_parser("check", help="validate the layout, print counts per task and split; exit 1 when the data "
                                      "cannot be used for training")
    p.add_argument("target", metavar="CONFIG_OR_ROOT", help=target_help)
    p.add_argument("--split", choices=("train", "test"), help="check this split only (default: both)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of a config target, e.g. --set data.train.root=/data (repeatable)")
    p.set_defaults(func=cmd_data_check)
    p = data.add_parser("preview", help="write a PNG grid of degraded/clean samples per task")
    p.add_argument("target", metavar="CONFIG_OR_ROOT", help=target_help)
    p.add_argument("--out", required=True, help="output PNG file")
    p.add_argument("--per-task", type=int, default=3, help="samples per task (default: 3)")
    p.add_argument("--split", choices=("train", "test"), default="train", help="split to show (default: train)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of a config target (repeatable)")
    overwrite_arg(p, "an existing --out file")
    p.set_defaults(func=cmd_data_preview)
    p = data.add_parser("synthesize", help="write a fixed MiOIR seven-task degraded set once, with a manifest of "
                                           "every image's seed and parameters (resumable, never overwriting)")
    p.add_argument("source", help="folder of clean images (searched recursively), e.g. DF2K or the test images")
    p.add_argument("out", help="output folder; a run into a folder of the same settings resumes it")
    p.add_argument("--tasks", default="sr,blur,noise,jpeg,rain,haze,lowlight",
                   help="comma-separated MiOIR tasks (default: all seven)")
    p.add_argument("--level", choices=("id", "ood"), default="id", help="degradation ranges (default: id)")
    p.add_argument("--sr-mode", choices=("torch", "pil"), default="torch", help="bicubic of the SR task")
    p.add_argument("--jpeg-codec", choices=("diffjpeg", "pillow"), default="diffjpeg",
                   help="JPEG algorithm (default: MiOIR's DiffJPEG)")
    p.add_argument("--seed", type=int, default=0, help="base seed of the per-image generators (default: 0)")
    p.set_defaults(func=cmd_data_synthesize)
    return parser


class _StderrHandler(logging.Handler):
    """cplir's log messages as plain lines on the current ``sys.stderr``."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    log = logging.getLogger("cplir")
    if not log.handlers:  # say which data a command reads (e.g. the embedded set's scenes)
        log.addHandler(_StderrHandler())
        log.setLevel(logging.INFO)
    try:
        return args.func(args)
    except CplirError as err:
        print(f"cplir {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cplir {args.command}: interrupted", file=sys.stderr)
        return 130
