"""Bridges between culex and a real Mosquitto: topics in, out and both with prefixes, MQTT
3.1.1 (try_private) and 5 links, no loops, queued messages delivered after the remote broker
comes back, the link's state, and a Mosquitto bridge connecting to culex."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from culex.bridgeconfig import BridgeConfig, BridgeConfigError, TopicRule, parse_topic_line
from culex.configfile import read_config

from certs import CertSet
from support import (
    WAIT,
    BrokerProcess,
    MosquittoProcess,
    broker_with_config,
    free_port,
    mosquitto_sub,
    sub_lines,
)


def sub(port: int, topic: str, count: int, *extra: str) -> subprocess.Popen[str]:
    """mosquitto_sub in the background (``extra``: more of its options), ready once it has
    its SUBACK."""
    return mosquitto_sub(port, "-t", topic, "-v", "-C", str(count), "-W", str(int(WAIT)),
                         "-q", "1", *extra)


def received(proc: subprocess.Popen[str]) -> list[str]:
    return sub_lines(proc)


def wait_for_lines(broker: BrokerProcess, text: str, count: int) -> None:
    """Until ``count`` log lines of the broker contain ``text``."""
    deadline = time.monotonic() + WAIT
    while sum(text in line for line in list(broker.lines)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} lines with {text!r}"
        time.sleep(0.02)  # the log is read by a thread; this waits for its lines


def pub(port: int, topic: str, message: str, qos: int = 1) -> None:
    subprocess.run(["mosquitto_pub", "-p", str(port), "-t", topic, "-m", message, "-q",
                    str(qos)], check=True, timeout=WAIT)


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[MosquittoProcess]:
    process = MosquittoProcess(tmp_path).start()
    yield process
    if process.proc is not None and process.proc.poll() is None:
        process.stop()


def culex_bridged(tmp_path: Path, remote_port: int, version: str,
                  topics: list[str], *extra: str) -> BrokerProcess:
    config = tmp_path / "culex.toml"
    config.write_text("\n".join([
        "persistence = false", "[[bridge]]", 'name = "cloud"',
        f'address = "127.0.0.1:{remote_port}"', f'protocol_version = "{version}"',
        'restart_timeout = "0.1 0.5"', "topics = [" + ", ".join(f'"{t}"' for t in topics) + "]",
        *extra]) + "\n")
    broker = BrokerProcess("--config", str(config)).start()
    broker.wait_for_log("bridge cloud: connected")
    return broker


@pytest.mark.parametrize("version", ["mqttv311", "mqttv50"])
def test_in_out_and_both_with_prefixes_and_no_loop(tmp_path: Path, remote: MosquittoProcess,
                                                   version: str) -> None:
    broker = culex_bridged(tmp_path, remote.port, version,
                           ["sensors/# out 1 maison/ house/", "commands/# in 1 maison/ house/",
                            "chat/# both 1"])
    try:
        up = sub(remote.port, "house/#", 1)
        pub(broker.port, "maison/sensors/t", "21")  # out, prefix rewritten
        assert received(up) == ["house/sensors/t 21"]
        down = sub(broker.port, "maison/#", 1)
        pub(remote.port, "house/commands/light", "on")  # in
        assert received(down) == ["maison/commands/light on"]
        # both: each message once on each side, never echoed back.
        here, there = sub(broker.port, "chat/#", 3), sub(remote.port, "chat/#", 3)
        pub(broker.port, "chat/a", "1")
        pub(remote.port, "chat/b", "2")
        pub(broker.port, "chat/c", "3")
        for side in (here, there):
            assert sorted(received(side)) == ["chat/a 1", "chat/b 2", "chat/c 3"]
        state = subprocess.run(["mosquitto_sub", "-p", str(broker.port), "-t",
                                "$SYS/broker/connection/cloud/state", "-C", "1", "-W", "5"],
                               capture_output=True, timeout=WAIT)
        assert state.stdout == b"1\n"
    finally:
        broker.stop()


def test_messages_wait_for_the_remote_broker(tmp_path: Path) -> None:
    # The remote Mosquitto keeps sessions across its restart: the watcher's below.
    saved = f"persistence true\npersistence_location {tmp_path}/\n"
    remote = MosquittoProcess(tmp_path, extra=saved).start()
    watch = ["mosquitto_sub", "-p", str(remote.port), "-t", "q/#", "-q", "1", "-c", "-i",
             "watcher", "-v"]
    subprocess.run([*watch, "-E"], check=True, timeout=WAIT)  # its session, subscribed
    broker = culex_bridged(tmp_path, remote.port, "mqttv311", ["q/# out 1"])
    try:
        remote.stop()
        broker.wait_for_log("bridge cloud: connection lost")
        for n in range(20):  # published while the remote broker is down: kept
            pub(broker.port, "q/x", f"m{n}")
        state = subprocess.run(["mosquitto_sub", "-p", str(broker.port), "-t",
                                "$SYS/broker/connection/cloud/state", "-C", "1", "-W", "5"],
                               capture_output=True, timeout=WAIT)
        assert state.stdout == b"0\n"
        # The remote broker comes back, the link with it, and the messages cross it into
        # the watcher's session there.
        remote.start()
        wait_for_lines(broker, "bridge cloud: connected", 2)
        watcher = subprocess.run([*watch, "-C", "20", "-W", str(int(WAIT))],
                                 capture_output=True, timeout=WAIT * 2)
        assert watcher.stdout.decode().splitlines() == [f"q/x m{n}" for n in range(20)]
    finally:
        broker.stop()
        remote.stop()


def test_a_mosquitto_bridge_connects_to_culex_with_try_private(tmp_path: Path) -> None:
    broker = BrokerProcess("--no-persistence").start()
    try:
        remote = MosquittoProcess(tmp_path, extra=(
            f"connection to-culex\naddress 127.0.0.1:{broker.port}\ntopic # both 1\n"
            "try_private true\nbridge_protocol_version mqttv311\n"
            "restart_timeout 1\n")).start()
        try:
            broker.wait_for_log(r"connected: client \S+ from 127\.0\.0\.1:\d+, MQTT 3\.1\.1")
            here, there = sub(broker.port, "t/#", 2), sub(remote.port, "t/#", 2)
            pub(broker.port, "t/culex", "a")
            pub(remote.port, "t/mosquitto", "b")
            for side in (here, there):  # once each: no echo through the bridge
                assert sorted(received(side)) == ["t/culex a", "t/mosquitto b"]
            # Its notifications reach culex: the state topic, and the will of 0 set.
            state = subprocess.run(["mosquitto_sub", "-p", str(broker.port), "-t",
                                    "$SYS/broker/connection/+/state", "-C", "1", "-W", "5"],
                                   capture_output=True, timeout=WAIT)
            assert state.stdout == b"1\n"
        finally:
            remote.stop()
    finally:
        broker.stop()


def test_topic_lines_and_mosquitto_bridge_sections(tmp_path: Path) -> None:
    assert parse_topic_line("sensors/# out 1 maison/ house/") == \
        TopicRule("sensors/#", "out", 1, "maison/", "house/")
    assert parse_topic_line('"" in 2 local/a remote/b').local_filter == "local/a"
    for bad in ("x sideways", "x out 3", "x out 1 onlyone", "a/+ out 0 p+/ q/"):
        with pytest.raises(BridgeConfigError):
            parse_topic_line(bad)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {free_port()} 127.0.0.1\nallow_anonymous true\n"
                    "connection cloud\naddress 127.0.0.1:1884 127.0.0.1:1885\n"
                    "topic sensors/# out 1\ntopic cmd/# in 2 local/ remote/\n"
                    "remote_username u\nremote_password p\nbridge_protocol_version mqttv50\n"
                    "restart_timeout 2 20\nbridge_outgoing_retain false\n"
                    "bridge_attempt_unsubscribe false\n")
    config, notes = read_config(conf)
    [bridge] = config.bridges
    assert bridge.addresses == [("127.0.0.1", 1884), ("127.0.0.1", 1885)]
    assert [rule.direction for rule in bridge.topics] == ["out", "in"]
    assert (bridge.remote_username, bridge.remote_password, bridge.protocol_version) == \
        ("u", "p", "mqttv50")
    assert bridge.restart_timeout == (2.0, 20.0) and not bridge.outgoing_retain
    assert [str(note).split(": ")[-1] for note in notes] == ["not supported for bridges yet"]


def test_a_configuration_that_would_loop_is_refused() -> None:
    looping = BridgeConfig("b", [("h", 1883)], [TopicRule("#", "both")], try_private=False)
    with pytest.raises(BridgeConfigError, match="messages would loop"):
        looping.validate()
    BridgeConfig("b", [("h", 1883)], [TopicRule("#", "both")],
                 protocol_version="mqttv50", try_private=False).validate()
    BridgeConfig("b", [("h", 1883)], [TopicRule("a/#", "out"), TopicRule("b/#", "in")],
                 try_private=False).validate()


def test_check_config_prints_bridges_as_toml_that_reads_back(tmp_path: Path) -> None:
    import tomllib

    from culex.check import as_toml
    from culex.config import config_from_mapping

    conf = tmp_path / "mosquitto.conf"
    conf.write_text("connection cloud\naddress 127.0.0.1:1884\ntopic # both 1\n"
                    'topic "" in 0 here/a there/b\nrestart_timeout 3 30\n')
    config, _ = read_config(conf)
    text = as_toml(config)
    assert as_toml(config_from_mapping(tomllib.loads(text))) == text


def watcher_session(remote: MosquittoProcess, topic: str) -> list[str]:
    """A persistent session on the remote broker subscribed to ``topic`` at QoS 2: the
    command that collects what reached it."""
    watch = ["mosquitto_sub", "-p", str(remote.port), "-t", topic, "-q", "2", "-c", "-i",
             "watcher", "-v"]
    subprocess.run([*watch, "-E"], check=True, timeout=WAIT)
    return watch


def collected(watch: list[str], count: int) -> list[str]:
    result = subprocess.run([*watch, "-C", str(count), "-W", str(int(WAIT))],
                            capture_output=True, timeout=WAIT * 2)
    return result.stdout.decode().splitlines()


@pytest.mark.parametrize("version", ["mqttv311", "mqttv50"])
def test_qos2_exactly_once_across_a_remote_restart(tmp_path: Path, version: str) -> None:
    saved = f"persistence true\npersistence_location {tmp_path}/\n"
    remote = MosquittoProcess(tmp_path, extra=saved).start()
    watch = watcher_session(remote, "s/#")
    broker = culex_bridged(tmp_path, remote.port, version, ["s/# out 2"])
    try:
        for n in range(60):
            if n == 30:
                remote.stop()  # mid-stream
            subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t", "s/x", "-m",
                            f"m{n}", "-q", "2"], check=True, timeout=WAIT)
        remote.start()
        wait_for_lines(broker, "bridge cloud: connected", 2)
        assert collected(watch, 60) == [f"s/x m{n}" for n in range(60)]  # each once, in order
    finally:
        broker.stop()
        remote.stop()


def test_nothing_acknowledged_is_lost_when_culex_is_killed(tmp_path: Path) -> None:
    saved = f"persistence true\npersistence_location {tmp_path}/\n"
    remote = MosquittoProcess(tmp_path, extra=saved).start()
    watch = watcher_session(remote, "k/#")
    data = tmp_path / "culex-data"
    config = tmp_path / "culex.toml"
    config.write_text("\n".join([
        f'persistence_location = "{data}"', "[[bridge]]", 'name = "cloud"',
        f'address = "127.0.0.1:{remote.port}"', 'restart_timeout = "0.1 0.5"',
        'topics = ["k/# out 1"]']) + "\n")
    broker = BrokerProcess("--config", str(config)).start()
    broker.wait_for_log("bridge cloud: connected")
    remote.stop()
    broker.wait_for_log("bridge cloud: connection lost")
    for n in range(10):  # each acknowledged: on disk, waiting for the link
        subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t", "k/x", "-m", f"m{n}",
                        "-q", "1"], check=True, timeout=WAIT)
    broker.kill()
    remote.start()
    again = BrokerProcess("--config", str(config)).start()
    try:
        again.wait_for_log("bridge cloud: connected")
        assert collected(watch, 10) == [f"k/x m{n}" for n in range(10)]
    finally:
        again.stop()
        remote.stop()


@pytest.mark.parametrize("version", ["mqttv311", "mqttv50"])
def test_culex_to_culex_both_ways_without_echo(tmp_path: Path, version: str) -> None:
    remote = BrokerProcess("--no-persistence").start()
    try:
        broker = culex_bridged(tmp_path, remote.port, version, ["# both 1"])
        try:
            here, there = sub(broker.port, "room/#", 4), sub(remote.port, "room/#", 4)
            for n, port in enumerate((broker.port, remote.port, broker.port, remote.port)):
                pub(port, f"room/{n}", "x")
            for side in (here, there):  # four messages, each once on each side
                assert sorted(received(side)) == [f"room/{n} x" for n in range(4)]
            # The link said it is up on the remote culex too (the one $SYS topic clients
            # may write, as Mosquitto's bridges do).
            state = subprocess.run(["mosquitto_sub", "-p", str(remote.port), "-t",
                                    "$SYS/broker/connection/cloud/state", "-C", "1", "-W",
                                    "5"], capture_output=True, timeout=WAIT)
            assert state.stdout == b"1\n"
        finally:
            broker.stop()
    finally:
        remote.stop()


def test_a_tls_link_with_a_client_certificate(tmp_path: Path, certs: CertSet) -> None:
    tls = ('[[listener]]\nport = 0\nbind_address = "127.0.0.1"\n'
           f'certfile = "{certs.server.cert}"\nkeyfile = "{certs.server.key}"\n'
           f'cafile = "{certs.ca.cert}"\nrequire_certificate = true\n'
           "use_identity_as_username = true\n")
    (tmp_path / "remote").mkdir()
    with broker_with_config(tmp_path / "remote", tls) as remote:
        broker = culex_bridged(tmp_path, remote.port, "mqttv50", ["t/# out 1"],
                               f'cafile = "{certs.ca.cert}"',
                               f'certfile = "{certs.client.cert}"',
                               f'keyfile = "{certs.client.key}"')
        try:
            remote.wait_for_log(r"connected: client cloud from .*MQTT 5")
            watcher = sub(remote.port, "t/#", 1, "--cafile", certs.ca.cert, "--cert",
                          certs.client.cert, "--key", certs.client.key)
            pub(broker.port, "t/secure", "yes")
            assert received(watcher) == ["t/secure yes"]
        finally:
            broker.stop()


def test_a_retained_deletion_made_while_the_link_is_down_is_not_lost(tmp_path: Path) -> None:
    saved = f"persistence true\npersistence_location {tmp_path}/\n"
    remote = MosquittoProcess(tmp_path, extra=saved).start()
    broker = culex_bridged(tmp_path, remote.port, "mqttv311", ["state/# out 1"])
    try:
        subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t", "state/door", "-m",
                        "open", "-r"], check=True, timeout=WAIT)

        def remote_retained() -> bytes:
            return subprocess.run(["mosquitto_sub", "-p", str(remote.port), "-t", "state/#",
                                   "-W", "1", "-v"], capture_output=True, timeout=WAIT).stdout

        deadline = time.monotonic() + WAIT
        while remote_retained() != b"state/door open\n":  # it crossed (QoS 0: no receipt)
            assert time.monotonic() < deadline
        remote.stop()
        broker.wait_for_log("bridge cloud: connection lost")
        # Deleted here while the link is down, at QoS 0.
        subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t", "state/door", "-n",
                        "-r"], check=True, timeout=WAIT)
        remote.start()  # with "open" retained (it persists): gone only if the deletion crosses
        wait_for_lines(broker, "bridge cloud: connected", 2)
        deadline = time.monotonic() + WAIT
        while remote_retained() != b"":
            assert time.monotonic() < deadline, "the deletion never reached the remote broker"
    finally:
        broker.stop()
        remote.stop()


def test_sighup_adds_removes_and_changes_bridges(tmp_path: Path) -> None:
    import signal

    first = MosquittoProcess(tmp_path).start()
    second = MosquittoProcess(tmp_path).start()
    config = tmp_path / "culex.toml"

    def bridges(*tables: tuple[str, int, str]) -> None:
        lines = ["persistence = false"]
        for name, port, topics in tables:
            lines += ["[[bridge]]", f'name = "{name}"', f'address = "127.0.0.1:{port}"',
                      'restart_timeout = "0.1 0.5"', f'topics = ["{topics}"]']
        config.write_text("\n".join(lines) + "\n")

    bridges(("one", first.port, "a/# out 1"))
    broker = BrokerProcess("--config", str(config)).start()
    try:
        broker.wait_for_log("bridge one: connected")
        local = sub(broker.port, "a/#", 2)  # a client of culex, there throughout
        bridges(("two", second.port, "a/# out 1"))
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGHUP)
        broker.wait_for_log("bridge one: removed")
        broker.wait_for_log("bridge two: connected")
        on_first, on_second = sub(first.port, "a/#", 1), sub(second.port, "a/#", 1)
        pub(broker.port, "a/x", "after")
        assert received(on_second) == ["a/x after"]
        pub(broker.port, "a/y", "end")
        assert received(local) == ["a/x after", "a/y end"]  # the client stayed connected
        on_first.kill()
        assert on_first.communicate()[0].count("a/x") == 0  # the removed bridge is gone
    finally:
        broker.stop()
        first.stop()
        second.stop()


def test_the_link_state_is_a_metric(tmp_path: Path, remote: MosquittoProcess) -> None:
    import re
    import urllib.request

    config = tmp_path / "culex.toml"
    config.write_text("\n".join([
        "persistence = false", "[[listener]]", "port = 0", "[[listener]]", "port = 0",
        'protocol = "http"', "[[bridge]]", 'name = "cloud"',
        f'address = "127.0.0.1:{remote.port}"', 'restart_timeout = "0.1 0.5"',
        'topics = ["m/# out 0"]']) + "\n")
    broker = BrokerProcess("--config", str(config), listen=False).start()
    try:
        broker.wait_for_log("bridge cloud: connected")
        line = broker.wait_for_log(r"listening on 127\.0\.0\.1:\d+ \(HTTP\)")
        port = re.findall(r":(\d+) ", line)[0]

        def metric() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                        timeout=WAIT) as response:
                text = response.read().decode()
            return re.findall(r'^culex_bridge_connected\{bridge="cloud"\} (\S+)$', text,
                              re.M)[0]

        assert metric() == "1.0"
        remote.stop()
        broker.wait_for_log("bridge cloud: connection lost")
        assert metric() == "0.0"
    finally:
        broker.stop()


def test_inbound_messages_survive_a_culex_crash(tmp_path: Path) -> None:
    remote = MosquittoProcess(tmp_path).start()
    data = tmp_path / "culex-data"
    config = tmp_path / "culex.toml"
    config.write_text("\n".join([
        f'persistence_location = "{data}"', "[[bridge]]", 'name = "cloud"',
        f'address = "127.0.0.1:{remote.port}"', 'restart_timeout = "0.1 0.5"',
        'topics = ["in/# in 1"]']) + "\n")
    keeper = ["-p", "0", "-t", "in/#", "-q", "1", "-c", "-i", "keeper", "-v"]
    broker = BrokerProcess("--config", str(config)).start()
    try:
        keeper[1] = str(broker.port)
        broker.wait_for_log("bridge cloud: connected")
        subprocess.run(["mosquitto_sub", *keeper, "-E"], check=True, timeout=WAIT)
        for n in range(20):  # the remote broker has each (its PUBACK); then culex dies
            pub(remote.port, "in/x", f"m{n}")
        broker.kill()
    finally:
        if broker.proc is not None and broker.proc.poll() is None:
            broker.stop()
    again = BrokerProcess("--config", str(config), "--listen", f"127.0.0.1:{broker.port}",
                          listen=False).start()
    try:
        again.wait_for_log("bridge cloud: connected")
        # All that comes within 3 s (duplicates possible at QoS 1, so no count to wait for).
        got = subprocess.run(["mosquitto_sub", *keeper, "-W", "3"],
                             capture_output=True, timeout=WAIT * 2).stdout.decode()
        # Every message once at least (QoS 1: a message not yet acknowledged when culex died
        # comes again from the remote broker's session for the link).
        assert {f"in/x m{n}" for n in range(20)} <= set(got.splitlines())
    finally:
        again.stop()
        remote.stop()


def test_the_acl_does_not_filter_a_bridge(tmp_path: Path, remote: MosquittoProcess) -> None:
    # The ACL is written for clients: alice may write x/# and read y/#; the bridge, which
    # has no rule, still forwards x/# out and y/# in.
    (tmp_path / "acl").write_text("user alice\ntopic write x/#\ntopic read y/#\n")
    passwd = tmp_path / "passwd"
    passwd.write_text("")
    subprocess.run([sys.executable, "-m", "culex", "passwd", "-b", str(passwd), "alice",
                    "pw", "--iterations", "1000"], check=True, timeout=WAIT)
    config = tmp_path / "culex.toml"
    config.write_text("\n".join([
        "persistence = false", f'acl_file = "{tmp_path / "acl"}"',
        f'password_file = "{passwd}"', "[[bridge]]", 'name = "cloud"',
        f'address = "127.0.0.1:{remote.port}"', 'protocol_version = "mqttv50"',
        'topics = ["x/# out 1", "y/# in 1"]']) + "\n")
    broker = BrokerProcess("--config", str(config)).start()
    try:
        broker.wait_for_log("bridge cloud: connected")
        alice = ["-u", "alice", "-P", "pw"]
        up = sub(remote.port, "x/#", 1)
        subprocess.run(["mosquitto_pub", "-p", str(broker.port), *alice, "-t", "x/1", "-m",
                        "out", "-q", "1"], check=True, timeout=WAIT)
        assert received(up) == ["x/1 out"]
        down = sub(broker.port, "y/#", 1, *alice)
        pub(remote.port, "y/1", "in")
        assert received(down) == ["y/1 in"]
    finally:
        broker.stop()
