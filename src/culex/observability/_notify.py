"""The service manager's notification protocol (systemd's sd_notify): with ``Type=notify``,
systemd waits for READY=1 before it calls the broker started, shows STATUS= in ``systemctl
status``, and knows about reloads and stops. One datagram per message to $NOTIFY_SOCKET;
nothing at all when the variable is not set."""

from __future__ import annotations

import os
import socket


def notify(message: str) -> bool:
    """Send ``message`` ("READY=1", "STATUS=...", ...) to the service manager, if any;
    whether it was sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:
        return False  # a service manager that went away must not stop the broker
    return True
