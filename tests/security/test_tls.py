"""TLS listeners and client certificates, with paho-mqtt and the mosquitto tools."""

from __future__ import annotations

import shutil
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import paho.mqtt.client as mqtt

from culex.protocol import ConnAck, Connect, Will

from certs import CertSet
from paho_client import Paho
from support import WAIT, RawClient, broker_env, broker_with_config


def tls_listener(certs: CertSet, **options: object) -> str:
    lines = ["[[listener]]", "port = 0", 'bind_address = "127.0.0.1"',
             f'certfile = "{certs.server.cert}"', f'keyfile = "{certs.server.key}"']
    for key, value in options.items():
        lines.append(f"{key} = {value!r}".replace("True", "true").replace("False", "false")
                     .replace("'", '"'))
    return "\n".join(lines) + "\n"


def mosquitto_pub(port: int, certs: CertSet, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port),
                           "--cafile", certs.ca.cert, *args], capture_output=True, text=True,
                          timeout=WAIT)


def test_tls_with_paho_and_mosquitto(certs: CertSet, tmp_path: Path) -> None:
    with broker_with_config(tmp_path, tls_listener(certs)) as broker:
        sub = Paho(broker.port, mqtt.MQTTv5, "tls-sub", ca_certs=certs.ca.cert).connect()
        sub.subscribe("secure/#", 1)
        result = mosquitto_pub(broker.port, certs, "-t", "secure/a", "-m", "hello", "-q", "1")
        assert result.returncode == 0, result.stderr
        message = sub.get()
        assert (message.topic, message.payload) == ("secure/a", b"hello")
        sub.disconnect()


def test_plain_tcp_to_a_tls_port_is_refused(certs: CertSet, tmp_path: Path) -> None:
    with broker_with_config(tmp_path, tls_listener(certs)) as broker:
        client = RawClient(broker.port)
        # A plain CONNECT large enough to fill the TLS record its first bytes seem to announce,
        # so the TLS layer rejects it at once (a tiny one is dropped by the 10 s handshake
        # timeout instead).
        client.send(Connect("plain", will=Will("w", b"x" * 2000)))
        assert client.expect_closed() == []  # no CONNACK, never a plain-text fallback
        assert "wrong version number" in broker.wait_for_log(
            r"TLS handshake failed: from 127\.0\.0\.1:\d+ on listener")
        assert not any("connected:" in line for line in broker.lines)


def test_client_certificates(certs: CertSet, tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    acl.write_text("pattern readwrite devices/%u/#\n")
    config = tls_listener(certs, cafile=certs.ca.cert, require_certificate=True,
                          use_identity_as_username=True) + f'acl_file = "{acl}"\n'
    config = f'acl_file = "{acl}"\n' + config.replace(f'acl_file = "{acl}"\n', "")
    with broker_with_config(tmp_path, config) as broker:
        # The certificate's CN (device-1) is the user name the ACL pattern sees.
        sub = Paho(broker.port, mqtt.MQTTv311, "cert-sub", ca_certs=certs.ca.cert,
                   certfile=certs.client.cert, keyfile=certs.client.key).connect()
        assert [int(getattr(g, "value", g)) for g in sub.subscribe("devices/device-1/#", 1)] \
            == [1]
        good = mosquitto_pub(broker.port, certs, "--cert", certs.client.cert, "--key",
                             certs.client.key, "-t", "devices/device-1/t", "-m", "ok", "-q", "1")
        assert good.returncode == 0, good.stderr
        assert sub.get().payload == b"ok"
        for bad in (certs.expired, certs.foreign):
            refused = mosquitto_pub(broker.port, certs, "--cert", bad.cert, "--key", bad.key,
                                    "-t", "devices/device-1/t", "-m", "no")
            assert refused.returncode != 0
        without = mosquitto_pub(broker.port, certs, "-t", "devices/device-1/t", "-m", "no")
        assert without.returncode != 0
        sub.disconnect()


def test_identity_over_raw_tls(certs: CertSet, tmp_path: Path) -> None:
    config = tls_listener(certs, cafile=certs.ca.cert, require_certificate=True,
                          use_subject_as_username=True)
    with broker_with_config(tmp_path, config) as broker:
        context = ssl.create_default_context(cafile=certs.ca.cert)
        context.load_cert_chain(certs.client.cert, certs.client.key)
        client = RawClient(broker.port, 4, tls=context)
        client.send(Connect("subject"))
        assert client.recv_packet() == ConnAck(False, 0)
        broker.wait_for_log(r"connected: client subject ")


def test_unloadable_certificate_stops_the_broker(tmp_path: Path, certs: CertSet) -> None:
    config = tmp_path / "culex.toml"
    config.write_text(tls_listener(certs).replace(certs.server.key, str(tmp_path / "none.key")))
    result = subprocess.run([sys.executable, "-m", "culex", "serve", "--config", str(config)],
                            capture_output=True, text=True, timeout=WAIT,
                            env=broker_env(str(tmp_path)))
    assert result.returncode == 2
    assert "cannot load certfile" in result.stderr and "none.key" in result.stderr


def test_sighup_reloads_certificates(certs: CertSet, tmp_path: Path) -> None:
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    shutil.copy(certs.server.cert, cert)
    shutil.copy(certs.server.key, key)
    config = tls_listener(certs).replace(certs.server.cert, str(cert)).replace(
        certs.server.key, str(key))

    def handshake(ca: str) -> bool:
        context = ssl.create_default_context(cafile=ca)
        try:
            RawClient(broker.port, 4, tls=context).close()
        except ssl.SSLError:
            return False
        return True

    with broker_with_config(tmp_path, config) as broker:
        assert handshake(certs.ca.cert) and not handshake(certs.other_ca.cert)
        shutil.copy(certs.other_server.cert, cert)
        shutil.copy(certs.other_server.key, key)
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGHUP)
        broker.wait_for_log(r"reloaded certificates of listener")
        assert handshake(certs.other_ca.cert) and not handshake(certs.ca.cert)
        cert.write_text("not a certificate")
        broker.proc.send_signal(signal.SIGHUP)
        broker.wait_for_log(r"keeping its previous certificates")
        assert handshake(certs.other_ca.cert)


def test_secure_websockets_with_client_certificates(certs: CertSet, tmp_path: Path) -> None:
    config = tls_listener(certs, protocol="websockets", cafile=certs.ca.cert,
                          require_certificate=True, use_identity_as_username=True)
    with broker_with_config(tmp_path, config) as broker:
        broker.wait_for_log(r"\(secure WebSockets\)")
        client = Paho(broker.port, mqtt.MQTTv5, "wss-client", ca_certs=certs.ca.cert,
                      certfile=certs.client.cert, keyfile=certs.client.key,
                      transport="websockets").connect()
        client.subscribe("wss/#", 1)
        client.client.publish("wss/a", b"over wss", 1)
        message = client.get()
        assert (message.topic, message.payload) == ("wss/a", b"over wss")
        broker.wait_for_log(r"connected: client wss-client ")
        client.disconnect()
