"""Command-line plumbing shared by ``train.py``, ``eval.py`` and ``demo.py``.

Every entry point takes ``--cfg FILE`` followed by optional ``KEY VALUE`` overrides, and a user's
mistake (bad config, missing file, unfit checkpoint) ends with one clear line and exit code 2
instead of a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from yacs.config import CfgNode

from lib.config import get_cfg
from lib.errors import UserError  # raised by the entry points; every project error derives from it


def make_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cfg", metavar="FILE", default=None, help="experiment YAML (configs/*.yaml)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE",
                        help="config overrides, e.g. TRAIN.LR 1e-4 MODEL.SEQ_LEN 8")  # fmt: skip
    return parser


def config_from_args(args: argparse.Namespace) -> CfgNode:
    """The merged, validated, frozen config of parsed ``--cfg`` / overrides."""
    return get_cfg(args.cfg, args.opts)


def run_main(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Call ``main``; report a user's mistake (a ``UserError``, lib/errors.py) as ``error: ...`` on stderr
    with exit code 2. Any other exception is a bug and keeps its traceback."""
    try:
        return main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
