"""``culex check-config FILE``: everything ``culex serve`` would check before opening a
socket (the file, the password and ACL files, the certificates), every problem at once with
its file, line and option, and the settings in effect, printed as culex's TOML (so that a
mosquitto.conf can be turned into one)."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any, TextIO

from .config import Config, ConfigError, ListenerConfig, Problem
from .configfile import read_config


def check_config(path: str, out: TextIO) -> int:
    """Exit status: 0 if ``culex serve`` would start with this file, 1 if not."""
    try:
        config, notes = read_config(path)
    except ConfigError as exc:
        errors = [problem for problem in exc.problems if not problem.warning]
        notes = [problem for problem in exc.problems if problem.warning]
        _report(out, path, None, errors, notes)
        return 1
    errors = _deeper(config)
    _report(out, path, config, errors, notes)
    return 1 if errors else 0


def _deeper(config: Config) -> list[Problem]:
    """What only loading the files a configuration names can tell."""
    from .app import build_auth
    from .transport import TLSListener

    problems: list[Problem] = []
    try:
        build_auth(config)
    except ConfigError as exc:
        problems += exc.problems
    for listener in config.listeners:
        if listener.tls:
            try:
                TLSListener(listener)
            except ConfigError as exc:
                problems += exc.problems
    return problems


def _report(out: TextIO, path: str, config: Config | None, errors: list[Problem],
            notes: list[Problem]) -> None:
    for kind, problems in (("error", errors), ("warning", notes)):
        for problem in problems:
            option = f" [{problem.option}]" if problem.option else ""
            print(f"{kind}: {problem}{option}", file=out)
    if config is not None:
        print(f"# Settings in effect for {path}, as culex's TOML:", file=out)
        out.write(as_toml(config))
    verdict = "OK" if not errors else f"{len(errors)} error{'s' * (len(errors) != 1)}"
    print(f"{path}: {verdict}, {len(notes)} warning{'s' * (len(notes) != 1)}", file=out)


def as_toml(config: Config) -> str:
    lines = [_line(spec.name, getattr(config, spec.name)) for spec in fields(Config)
             if spec.name not in ("listeners", "bridges", "cluster")]
    for listener in config.listeners:
        lines += ["", "[[listener]]"]
        lines += [_line(spec.name, getattr(listener, spec.name))
                  for spec in fields(ListenerConfig)]
    for bridge in config.bridges:
        lines += ["", "[[bridge]]", _line("name", bridge.name),
                  _line("addresses", [f"{host}:{port}" for host, port in bridge.addresses]),
                  _line("topics", [" ".join([rule.pattern or '""', rule.direction,
                                             str(rule.qos), rule.local_prefix or '""',
                                             rule.remote_prefix or '""'])
                                   for rule in bridge.topics])]
        lines += [_line(spec.name, getattr(bridge, spec.name))
                  for spec in fields(bridge) if spec.name not in ("name", "addresses",
                                                                  "topics", "restart_timeout")]
        lines.append(_line("restart_timeout", list(bridge.restart_timeout)))
    if config.cluster is not None:
        lines += ["", "[cluster]"]
        lines += [_line(spec.name, getattr(config.cluster, spec.name))
                  for spec in fields(config.cluster)]
    return "\n".join(lines) + "\n"


SECRETS = ("password", "remote_password", "token")


def _line(name: str, value: Any) -> str:
    if value is None:
        return f"# {name} is not set"
    if name in SECRETS:
        return f"# {name} is set (not shown)"  # a terminal or a log is no place for it
    if isinstance(value, bool):
        return f"{name} = {'true' if value else 'false'}"
    if isinstance(value, int | float):
        return f"{name} = {value!r}"
    if isinstance(value, list):
        return f"{name} = {json.dumps(value, ensure_ascii=False)}"
    return f"{name} = {json.dumps(value, ensure_ascii=False)}"
