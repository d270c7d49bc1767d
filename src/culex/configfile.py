"""Reading a configuration file of either format: culex's TOML, or a Mosquitto configuration
(recognised by its lines: ``option value`` rather than ``key = value``)."""

from __future__ import annotations

import os

from .config import Config, Problem, load_config, read_text
from .mosquitto_conf import load_mosquitto_config, looks_like_mosquitto


def read_config(path: str | os.PathLike[str]) -> tuple[Config, list[Problem]]:
    """The configuration in ``path`` and the warnings about it (options read but not
    applied); ConfigError lists every problem, with file and line where known."""
    name = os.fspath(path)
    if looks_like_mosquitto(read_text(name)):
        return load_mosquitto_config(name)
    return load_config(name), []
