"""The ``culex`` command."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

from . import __version__

if TYPE_CHECKING:
    from .config import Problem


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's layout at the terminal's width, found without shutil: argparse imports it
    for that, and it brings bz2, lzma and the rest along (0.5 MB of an idle broker)."""

    def __init__(self, prog: str) -> None:
        columns = os.environ.get("COLUMNS", "")
        width = int(columns) if columns.isdigit() else 0
        if not width:
            try:
                width = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
            except (AttributeError, ValueError, OSError):
                width = 80
        super().__init__(prog, width=width - 2)


class _Version(argparse.Action):
    """--version: the version and the build, compiled or pure Python (found only when asked
    for: telling imports the protocol modules)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0,
                         help="show the version, and whether culex runs compiled or pure "
                              "Python, and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        from ._build import build

        print(f"culex {__version__} ({build()})")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="culex", description="An MQTT broker.",
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the broker", formatter_class=_HelpFormatter)
    serve.add_argument("--config", "-c", metavar="FILE",
                       help="configuration file: culex's TOML, or a mosquitto.conf")
    serve.add_argument("--listen", "-l", metavar="HOST:PORT", action="append", default=[],
                       help="listen on HOST:PORT (repeatable; replaces the configured "
                            "listeners; default 127.0.0.1:1883)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--data-dir", metavar="DIR",
                       help="where persistent sessions and retained messages are kept "
                            "(default: $STATE_DIRECTORY, else $XDG_STATE_HOME/culex, else "
                            "~/.local/state/culex)")
    serve.add_argument("--no-persistence", action="store_true",
                       help="keep everything in memory only: nothing survives a restart")
    serve.add_argument("--durability", choices=["full", "periodic"],
                       help="full (default): acknowledge QoS 1/2 messages once on disk; "
                            "periodic: write every autosave_interval seconds (faster; a crash "
                            "loses what was acknowledged since the last write)")
    for name, summary in (("pub", "publish messages (mosquitto_pub's options)"),
                          ("sub", "subscribe and print messages (mosquitto_sub's options)"),
                          ("rr", "request and response (mosquitto_rr's options)"),
                          ("bench", "load a broker and measure it (emqtt-bench's options)"),
                          ("demo", "the house of temperature sensors, live")):
        commands.add_parser(name, help=summary + f"; culex {name} --help", add_help=False)
    check = commands.add_parser(
        "check-config", help="check a configuration file (TOML or mosquitto.conf) and print "
                             "the settings in effect", formatter_class=_HelpFormatter)
    check.add_argument("file")
    passwd = commands.add_parser(
        "passwd", help="manage a password file (mosquitto_passwd's flags and format)",
        formatter_class=_HelpFormatter)
    passwd.add_argument("-c", dest="create", action="store_true",
                        help="create the file, replacing any existing one")
    passwd.add_argument("-b", dest="batch", action="store_true",
                        help="take the password from the command line")
    passwd.add_argument("-D", dest="delete", action="store_true", help="delete the user")
    passwd.add_argument("--iterations", type=int, default=None,
                        help="PBKDF2 iterations (default 210,000, or 600,000 with --scram: "
                             "see the README)")
    passwd.add_argument("--scram", action="store_true",
                        help="write a SCRAM-SHA-256 verifier, for MQTT 5 enhanced "
                             "authentication as well as plain passwords (Mosquitto cannot "
                             "read it)")
    passwd.add_argument("file")
    passwd.add_argument("username")
    passwd.add_argument("password", nargs="?")
    return parser


def _passwd(args: argparse.Namespace) -> None:
    import getpass

    from .auth import (
        DEFAULT_ITERATIONS,
        DEFAULT_SCRAM_ITERATIONS,
        Credential,
        PasswordFileError,
        hash_password,
        read_password_file,
        scram_credential,
        write_password_file,
    )

    if args.iterations is None:
        args.iterations = DEFAULT_SCRAM_ITERATIONS if args.scram else DEFAULT_ITERATIONS
    def fail(message: str) -> NoReturn:
        print(f"culex passwd: {message}", file=sys.stderr)
        raise SystemExit(1)

    if ":" in args.username or not args.username:
        fail("a user name must be non-empty and may not contain ':'")
    if args.iterations < 1:
        fail("--iterations must be at least 1")
    if args.create and args.delete:
        fail("-c and -D cannot be used together")
    if args.batch == (args.password is None) and not args.delete:
        fail("-b takes the password as the last argument; without -b it is asked for")
    users = {}
    if not args.create:
        try:
            users = read_password_file(args.file)
        except PasswordFileError as exc:
            fail(str(exc))
    if args.delete:
        if users.pop(args.username, None) is None:
            fail(f"user {args.username!r} is not in {args.file}")
    else:
        password = args.password
        if password is None:
            password = getpass.getpass("Password: ")
            if getpass.getpass("Reenter password: ") != password:
                fail("the passwords do not match")
        if not password:
            fail("empty password")
        hashed: Credential = (scram_credential(password.encode(), args.iterations)
                              if args.scram else hash_password(password.encode(),
                                                               args.iterations))
        users[args.username] = hashed
    write_password_file(args.file, users)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "demo":
        from .demo import main as demo

        raise SystemExit(demo(argv[1:]))
    if argv and argv[0] in ("pub", "sub", "rr", "bench"):
        # The client tools parse their own options (-h is the host there, as in mosquitto's).
        from .tools import run_tool

        with contextlib.suppress(KeyboardInterrupt):
            raise SystemExit(run_tool(argv[0], argv[1:]))
        raise SystemExit(130)
    args = _parser().parse_args(argv)
    if args.command == "passwd":
        _passwd(args)
        return
    if args.command == "check-config":
        from .check import check_config

        raise SystemExit(check_config(args.file, sys.stdout))
    # Only the broker needs the configuration modules: the client tools start faster without.
    from .config import Config, ConfigError, parse_listen
    from .configfile import read_config

    notes: list[Problem] = []
    try:
        if args.config:
            config, notes = read_config(args.config)
        else:
            config = Config()
        if args.listen:
            config.listeners = [parse_listen(item) for item in args.listen]
        if args.log_level:
            config.log_level = args.log_level
        if args.data_dir:
            config.persistence_location = args.data_dir
        if args.no_persistence:
            config.persistence = False
        if args.durability:
            config.durability = args.durability
        config.validate()
    except ConfigError as exc:
        for problem in exc.problems:
            kind = "warning" if problem.warning else "configuration error"
            print(f"culex: {kind}: {problem}", file=sys.stderr)
        raise SystemExit(2) from None
    from .observability import configure_logging

    try:
        configure_logging(config.log_level, config.log_format, config.log_dest)
    except OSError as exc:
        print(f"culex: cannot open the log file: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    log = logging.getLogger("culex")
    for note in notes:  # options read but not applied: said once each, at start
        log.warning("configuration: %s", note)
    from .app import run

    with contextlib.suppress(KeyboardInterrupt):
        run(config, args.config)
