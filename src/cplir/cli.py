"""The ``cplir`` command line.

Every subcommand is a function ``cmd_<name>(args) -> int`` registered in :func:`build_parser`. Errors a user can
cause (:class:`cplir.errors.CplirError`) are printed as one line and exit with status 2.
"""

import argparse
import sys
from typing import List, Optional

from cplir import __version__
from cplir.errors import CplirError


def _parse_value(text: str):
    """A ``--arg key=value`` value: YAML scalars and lists (``16``, ``[1,1,1,1]``, ``true``) or a string."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _model_kwargs(pairs: List[str]) -> dict:
    kwargs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CplirError(f"model argument {pair!r} must look like key=value, e.g. dim=16")
        kwargs[key] = _parse_value(value)
    return kwargs


def cmd_models(args) -> int:
    from cplir.models import build_model, list_models

    for name in list_models():
        if args.count:
            model = build_model(name, **_model_kwargs(args.arg))
            print(f"{name:12s} {sum(p.numel() for p in model.parameters()):>12,d} parameters")
        else:
            print(name)
    return 0


def cmd_demo(args) -> int:
    from cplir.demo import run_demo

    return run_demo(args.out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cplir", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"cplir {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the registered models")
    p.add_argument("--count", action="store_true", help="also build each model and count its parameters")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                   help="model keyword argument for --count, e.g. --arg dim=16 (repeatable)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("demo", help="run the demo on the embedded data")
    p.add_argument("--out", default="outputs/demo", help="output folder (default: outputs/demo)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CplirError as err:
        print(f"cplir {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cplir {args.command}: interrupted", file=sys.stderr)
        return 130
