"""A client still sending when the broker hangs up on it reads the broker's last packet (the
DISCONNECT saying why), not a connection reset."""

from __future__ import annotations

import contextlib
import socket
import threading

from culex.protocol import ConnAck, Connect, Decoder, Disconnect, Publish, ReasonCode

from support import WAIT, running_broker


def test_a_client_sending_beyond_the_receive_maximum_reads_the_disconnect() -> None:
    """MQTT 5.0 3.3.4: QoS 2 PUBLISHes beyond the broker's Receive Maximum get DISCONNECT 0x93;
    the client is still sending, so unread input is waiting when the broker hangs up."""
    flood = b"".join(Publish("t", b"x" * 64, qos=2, packet_id=n).encode(5)
                     for n in range(1, 3000))
    with running_broker("--no-persistence") as broker:
        for attempt in range(5):
            sock = socket.create_connection(("127.0.0.1", broker.port), timeout=WAIT)
            sock.sendall(Connect(f"eager{attempt}", 5).encode(5))
            stop = threading.Event()

            def send(sock: socket.socket = sock, stop: threading.Event = stop) -> None:
                with contextlib.suppress(OSError):  # the broker may be gone: that is the point
                    while not stop.is_set():
                        sock.sendall(flood)

            sender = threading.Thread(target=send)
            sender.start()
            decoder = Decoder(version=5)
            try:
                while data := sock.recv(1 << 16):  # a reset raises ConnectionResetError here
                    decoder.feed(data)
            finally:
                stop.set()
                sock.close()
                sender.join()
            packets = []
            while (packet := decoder.next_packet()) is not None:
                packets.append(packet)
            assert isinstance(packets[0], ConnAck)
            assert isinstance(packets[-1], Disconnect), packets[-3:]
            assert packets[-1].reason_code == ReasonCode.RECEIVE_MAXIMUM_EXCEEDED
