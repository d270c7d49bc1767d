"""The ``culex`` command."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys

from . import __version__
from .config import Config, ConfigError, load_config, parse_listen


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="culex", description="An MQTT broker.")
    parser.add_argument("--version", action="version", version=f"culex {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the broker")
    serve.add_argument("--config", "-c", metavar="FILE", help="TOML configuration file")
    serve.add_argument("--listen", "-l", metavar="HOST:PORT", action="append", default=[],
                       help="listen on HOST:PORT (repeatable; replaces the configured "
                            "listeners; default 127.0.0.1:1883)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config) if args.config else Config()
        if args.listen:
            config.listeners = [parse_listen(item) for item in args.listen]
        if args.log_level:
            config.log_level = args.log_level
        config.validate()
    except ConfigError as exc:
        print(f"culex: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(stream=sys.stderr, level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(message)s")
    from .transport import run

    with contextlib.suppress(KeyboardInterrupt):
        run(config)
