"""culex: an MQTT 3.1, 3.1.1 and 5.0 broker."""

__version__ = "0.1.0"

from ._build import prefer_sources, pure_python_asked

if pure_python_asked():  # before any compiled module is imported (see _build)
    prefer_sources()
