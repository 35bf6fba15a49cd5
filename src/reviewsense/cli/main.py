"""`reviewsense` entry point: dispatches to one module per command.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Expected user errors (:class:`ReviewsenseError`) are printed as one line
on stderr with exit code 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from reviewsense.errors import ReviewsenseError

# command name -> module under reviewsense.cli
COMMANDS = {
    "train": "train",
    "evaluate": "evaluate",
    "analyze": "analyze",
    "sweep": "sweep",
    "export": "export",
    "predict": "predict",
    "threshold": "threshold",
    "serve": "serve",
    "keys": "keys",
    "pretrain": "pretrain",
    "distill": "distill",
    "score": "score",
    "consume": "consume",
}


def _load(name: str):
    return importlib.import_module(f"reviewsense.cli.{COMMANDS[name]}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reviewsense",
        description="Fine-tune, diagnose and serve BERT-family review-sentiment models.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if only is not None and name != only:
            # Help text for the others without importing them (keeps start-up fast).
            sub.add_parser(name, add_help=False)
            continue
        try:
            mod = _load(name)
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith("reviewsense.cli."):
                continue  # command not built yet in this checkout
            raise
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        if only is not None:
            # Only the chosen command's flags: some read their defaults from the modules that
            # own them (the service settings, the consumer), which take a second to import.
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Build only the chosen command's parser: importing every command would cost seconds.
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args._run(args) or 0)
    except ReviewsenseError as e:
        sys.stderr.write(f"reviewsense {args.command}: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"reviewsense {args.command}: interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
