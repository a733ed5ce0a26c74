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


class UserError(Exception):
    """Base for errors caused by the user's input; entry points print them without a traceback."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Every exception type that reports a user mistake (imported lazily: heavy modules stay unloaded)."""
    from lib.body.files import BodyFileError
    from lib.config import ConfigError
    from lib.data.frames import DataMismatchError
    from lib.data.video_dataset import DetectorError
    from lib.demo.errors import DemoError
    from lib.engine.trainer import DivergenceError
    from lib.models.weights import CheckpointError
    from lib.people.errors import PeopleError

    # DataFileError is a FileNotFoundError.
    return (
        UserError,
        ConfigError,
        CheckpointError,
        BodyFileError,
        DataMismatchError,
        DetectorError,
        DemoError,
        DivergenceError,
        PeopleError,
        FileNotFoundError,
    )


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
    """Call ``main``; report user errors as ``error: ...`` on stderr with exit code 2."""
    try:
        return main(argv)
    except user_error_types() as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
