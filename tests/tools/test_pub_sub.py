"""culex pub and culex sub cross-checked with mosquitto_pub and mosquitto_sub, against culex
and against a real Mosquitto: every protocol version and QoS, properties and -F formats,
retained messages, wills, the ways of giving a message, TLS with client certificates,
WebSockets, and mosquitto's messages and exit statuses for what goes wrong."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from certs import CertSet
from support import WAIT, Endpoint, broker_with_config


def culex(*args: str) -> list[str]:
    return [sys.executable, "-m", "culex", *args]


def run(cmd: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=WAIT * 2)


def ready(proc: subprocess.Popen[bytes]) -> None:
    """Wait until a subscriber tool started with -d has its SUBACK (both tools print their
    -d lines on standard output)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if b"received SUBACK" in line:
            return
    raise AssertionError("no SUBACK: " + repr(proc.communicate()))


def without_debug(out: bytes) -> bytes:
    return b"".join(line for line in out.splitlines(keepends=True)
                    if not line.startswith((b"Client ", b"Subscribed (mid")))


class Subscriber:
    """A subscriber tool (culex sub or mosquitto_sub) in the background, ready once its
    SUBACK is in."""

    def __init__(self, cmd: list[str]) -> None:
        line_buffered = ["stdbuf", "-oL"] if cmd[0] == "mosquitto_sub" else []
        self.proc = subprocess.Popen([*line_buffered, *cmd, "-d"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        ready(self.proc)

    def output(self) -> bytes:
        """Its standard output once it exits (-C makes it), without the -d lines."""
        return rest_of(self.proc)


def rest_of(proc: subprocess.Popen[bytes]) -> bytes:
    """What a process started with ready() prints until it exits, without the -d lines. Read
    through the same buffered reader as ready() (communicate() would skip what that reader
    has already taken from the pipe)."""
    assert proc.stdout is not None
    assert proc.wait(WAIT) == 0
    return without_debug(proc.stdout.read())


def sub_cmd(tool: str, broker: Endpoint, *args: str) -> list[str]:
    base = culex("sub") if tool == "culex" else ["mosquitto_sub"]
    return [*base, "-h", "127.0.0.1", "-p", str(broker.port), *args]


def pub_cmd(tool: str, broker: Endpoint, *args: str) -> list[str]:
    base = culex("pub") if tool == "culex" else ["mosquitto_pub"]
    return [*base, "-h", "127.0.0.1", "-p", str(broker.port), *args]


@pytest.mark.parametrize("version", ["31", "311", "5"])
@pytest.mark.parametrize("publisher", ["culex", "mosquitto"])
def test_every_version_and_qos_both_ways(any_broker: Endpoint, version: str,
                                         publisher: str) -> None:
    subscriber = "mosquitto" if publisher == "culex" else "culex"
    topic = f"x/{publisher}/{version}"
    sub = Subscriber(sub_cmd(subscriber, any_broker, "-V", version, "-t", topic, "-q", "2",
                             "-C", "3", "-F", "%q %t %p"))
    for qos in (0, 1, 2):
        result = run(pub_cmd(publisher, any_broker, "-V", version, "-t", topic, "-q",
                             str(qos), "-m", f"qos{qos} é"))
        assert result.returncode == 0, result.stderr
    assert sub.output().decode().splitlines() == [f"{qos} {topic} qos{qos} é"
                                                  for qos in (0, 1, 2)]


FORMAT = "%t|%p|%x|%X|%l|%q|%r|%P|%C|%D|%R|%E|%F|%S|%j"


def test_properties_and_formats_print_as_mosquitto_sub_prints_them(any_broker: Endpoint) -> None:
    props = ["-D", "publish", "user-property", "k", "v", "-D", "publish", "user-property",
             "k2", "v 2", "-D", "publish", "content-type", "text/plain", "-D", "publish",
             "response-topic", "back", "-D", "publish", "correlation-data", "c-d", "-D",
             "publish", "payload-format-indicator", "1"]
    result = run(pub_cmd("culex", any_broker, "-V", "5", "-t", "f/t", "-m", "héllo\tx", "-r",
                         "-q", "1", *props))
    assert result.returncode == 0, result.stderr
    outputs = []
    for tool in ("mosquitto", "culex"):
        printed = run(sub_cmd(tool, any_broker, "-V", "5", "-t", "f/#", "-C", "1", "-F",
                              FORMAT, "-D", "subscribe", "subscription-identifier", "9"))
        assert printed.returncode == 0, printed.stderr
        text = printed.stdout.decode()
        # %j carries the receiving time, which differs, and the properties in the order
        # they came in: compared as JSON without the time, the rest as it is.
        codes, _, document = text.partition("{")
        parsed = json.loads("{" + document)
        del parsed["tst"]
        outputs.append((codes, parsed))
    assert outputs[0] == outputs[1]
    assert outputs[1][0].startswith("f/t|héllo\tx|68c3a96c6c6f0978|68C3A96C6C6F0978|8|0|1|"
                                    "k:v k2:v 2|text/plain|c-d|back||1|9|")
    for tool in ("mosquitto", "culex"):  # -v and -N, and an empty payload shown as (null)
        sub = Subscriber(sub_cmd(tool, any_broker, "-t", f"f/e/{tool}", "-C", "1", "-v"))
        assert run(pub_cmd("culex", any_broker, "-t", f"f/e/{tool}", "-n")).returncode == 0
        assert sub.output() == f"f/e/{tool} (null)\n".encode()
        bare = run(sub_cmd(tool, any_broker, "-t", "f/t", "-C", "1", "-N"))
        assert bare.stdout == "héllo\tx".encode()


def test_ways_of_giving_the_message(any_broker: Endpoint, tmp_path: Path) -> None:
    sub = Subscriber(sub_cmd("mosquitto", any_broker, "-t", "w/#", "-C", "8", "-F", "%t [%p]"))
    payload = tmp_path / "payload"
    payload.write_bytes(b"from a file")
    for args, stdin in ((["-t", "w/m", "-m", "plain"], None),
                        (["-t", "w/f", "-f", str(payload)], None),
                        (["-t", "w/s", "-s"], b"all\nof stdin"),
                        (["-t", "w/l", "-l"], b"line one\n\nline three\n"),
                        (["-t", "w/n", "-n", "--repeat", "2"], None)):
        result = run(pub_cmd("culex", any_broker, *args), stdin)
        assert result.returncode == 0, result.stderr
    # Eight messages: -s sends its newline as it is, -l an empty line as an empty message.
    assert sub.output().decode().splitlines() == [
        "w/m [plain]", "w/f [from a file]", "w/s [all", "of stdin]", "w/l [line one]",
        "w/l []", "w/l [line three]", "w/n []", "w/n []"]


def test_retained_options(any_broker: Endpoint) -> None:
    for topic, text in (("r/a", "A"), ("r/b", "B")):
        assert run(pub_cmd("culex", any_broker, "-t", topic, "-m", text, "-r")).returncode == 0
    # -R hides the retained ones: nothing to print before -W runs out (status 27, as there).
    for tool in ("culex", "mosquitto"):
        hidden = run(sub_cmd(tool, any_broker, "-t", "r/#", "-R", "-W", "1"))
        assert (hidden.returncode, hidden.stdout, hidden.stderr.strip()) == (27, b"",
                                                                             b"Timed out")
    # -T leaves topics out; --retained-only prints the retained messages and stops.
    only = run(sub_cmd("culex", any_broker, "-t", "r/#", "-T", "r/b", "--retained-only",
                       "-W", "2", "-v"))
    assert only.stdout == b"r/a A\n"
    # --remove-retained clears what it sees.
    cleared = run(sub_cmd("culex", any_broker, "-t", "r/#", "--remove-retained", "-C", "2"))
    assert sorted(cleared.stdout.split()) == [b"A", b"B"]
    empty = run(sub_cmd("mosquitto", any_broker, "-t", "r/#", "-W", "1"))
    assert (empty.returncode, empty.stdout) == (27, b"")


def test_a_will_and_a_persistent_session(any_broker: Endpoint) -> None:
    watcher = Subscriber(sub_cmd("mosquitto", any_broker, "-t", "will/#", "-C", "1", "-v"))
    dying = subprocess.Popen(culex("sub", "-p", str(any_broker.port), "-h", "127.0.0.1",
                                   "-t", "other", "--will-topic", "will/dev", "--will-payload",
                                   "gone", "--will-qos", "1", "-d"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ready(dying)
    dying.send_signal(signal.SIGKILL)  # no DISCONNECT: the will goes out
    dying.wait(WAIT)
    assert watcher.output() == b"will/dev gone\n"
    # -c with an id keeps the session: messages sent while it is away wait for it.
    keep = ["-i", "keeper", "-c", "-q", "1", "-t", "keep/#"]
    assert run(sub_cmd("culex", any_broker, *keep, "-E")).returncode == 0
    assert run(pub_cmd("mosquitto", any_broker, "-t", "keep/x", "-m", "queued", "-q",
                       "1")).returncode == 0
    back = run(sub_cmd("culex", any_broker, *keep, "-C", "1"))
    assert back.stdout == b"queued\n"


def test_refusals_and_errors_say_what_mosquittos_tools_say(tmp_path: Path) -> None:
    with broker_with_config(tmp_path, "allow_anonymous = false\n") as broker:
        for version, status in (("311", 5), ("5", 135)):
            said = []
            for tool in ("mosquitto", "culex"):
                for cmd in (pub_cmd(tool, Endpoint("culex", broker.port), "-V", version, "-t",
                                    "a", "-m", "b"),
                            sub_cmd(tool, Endpoint("culex", broker.port), "-V", version, "-t",
                                    "a")):
                    result = run(cmd)
                    assert result.returncode == status, (tool, cmd, result)
                    said.append(result.stderr.decode().splitlines()[0])
            assert len(set(said)) == 1, said  # the same first line from both tools
            assert said[0] in ("Connection error: Connection Refused: not authorised.",
                               "Connection error: Not authorized")
    nobody = Endpoint("culex", 1)  # nothing listens on port 1
    for tool in ("mosquitto", "culex"):
        result = run(pub_cmd(tool, nobody, "-t", "a", "-m", "b"))
        assert (result.returncode, result.stderr.decode().strip()) == \
            (1, "Error: Connection refused")
    for args, words in ((["-t", "a/+", "-m", "x"], "Invalid publish topic 'a/+'"),
                        (["-m", "x"], "Both topic and message must be supplied."),
                        (["-t", "a", "-m", "x", "-D", "publish", "content-type", "t"],
                         "only valid with MQTT 5")):
        result = run(pub_cmd("culex", nobody, *args))
        assert result.returncode == 1 and words in result.stderr.decode()
    quiet = run(pub_cmd("culex", nobody, "-t", "a", "-m", "b", "--quiet"))
    assert (quiet.returncode, quiet.stderr) == (1, b"")


def test_tls_with_client_certificates(certs: CertSet, tmp_path: Path) -> None:
    config = ('[[listener]]\nport = 0\nbind_address = "127.0.0.1"\n'
              f'certfile = "{certs.server.cert}"\nkeyfile = "{certs.server.key}"\n'
              f'cafile = "{certs.ca.cert}"\nrequire_certificate = true\n'
              "use_identity_as_username = true\n")
    with broker_with_config(tmp_path, config) as broker:
        port = Endpoint("culex", broker.port)
        tls = ["--cafile", certs.ca.cert, "--cert", certs.client.cert, "--key",
               certs.client.key]
        for publisher, subscriber in (("culex", "mosquitto"), ("mosquitto", "culex")):
            sub = Subscriber(sub_cmd(subscriber, port, *tls, "-t", "secure/#", "-C", "1",
                                     "-v"))
            result = run(pub_cmd(publisher, port, *tls, "-t", "secure/x", "-m", publisher,
                                 "-q", "1"))
            assert result.returncode == 0, result.stderr
            assert sub.output() == f"secure/x {publisher}\n".encode()
        # Without a client certificate the handshake fails: an error, status 1.
        result = run(pub_cmd("culex", port, "--cafile", certs.ca.cert, "-t", "a", "-m", "b"))
        assert result.returncode != 0 and result.stderr.startswith(b"Error: ")


def test_websockets_by_url(tmp_path: Path) -> None:
    config = '[[listener]]\nport = 0\nbind_address = "127.0.0.1"\nprotocol = "websockets"\n'
    with broker_with_config(tmp_path, config) as broker:
        url = f"ws://127.0.0.1:{broker.port}/ws/topic"
        sub = subprocess.Popen(culex("sub", "-L", url, "-C", "1", "-v", "-d"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ready(sub)
        assert run(culex("pub", "-L", url, "-m", "over ws", "-q", "2")).returncode == 0
        assert rest_of(sub) == b"ws/topic over ws\n"


def test_every_option_is_explained_by_help() -> None:
    from culex.tools import _bench, _pub, _rr, _sub

    for name, module in (("pub", _pub), ("sub", _sub), ("rr", _rr), ("bench", _bench)):
        parser = module.build_parser()
        shown = run(culex(name, "--help")).stdout.decode()
        for action in parser._actions:
            for option in action.option_strings:
                assert option in shown, (name, option)
            if action.option_strings:
                assert action.help, (name, action.option_strings)


def test_pub_reports_a_refused_message_as_mosquitto_pub_does(tmp_path: Path) -> None:
    (tmp_path / "acl").write_text("topic readwrite ok/#\n")
    with broker_with_config(tmp_path, 'acl_file = "acl"\n') as broker:
        for tool in ("mosquitto", "culex"):
            result = run(pub_cmd(tool, Endpoint("culex", broker.port), "-V", "5", "-t", "no/x",
                                 "-m", "a", "-q", "1"))
            assert result.returncode == 0
            assert result.stderr == b"Warning: Publish 1 failed: Not authorized.\n"

