"""Random packet sequences against the broker: never an exception, never a broken broker."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from culex.protocol import Connect, PingReq, PingResp, Publish, Subscribe, SubscriptionRequest

from strategies import VERSIONS, packets
from support import MemoryClient, make_broker


@st.composite
def chunks(draw: st.DrawFn, version: int) -> list[bytes]:
    """Valid packets of any kind, some cut short or corrupted, and bare noise."""
    out = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["packet", "packet", "packet", "flip", "noise"]))
        if kind == "noise":
            out.append(draw(st.binary(min_size=1, max_size=20)))
            continue
        wire = bytearray(draw(packets(version)).encode(version))
        if kind == "flip":
            index = draw(st.integers(0, len(wire) - 1))
            wire[index] ^= draw(st.integers(1, 255))
        out.append(bytes(wire))
    return out


@settings(max_examples=150)
@given(data=st.data())
def test_random_traffic_never_breaks_the_broker(data: st.DataObject) -> None:
    version = data.draw(st.sampled_from(VERSIONS))
    broker, clock = make_broker(max_inflight_messages=3, max_queued_messages=5)
    watcher = MemoryClient(broker, 4)
    watcher.send(Connect("watcher", 4, keep_alive=0), Subscribe(1, [SubscriptionRequest("#", 2)]))
    fuzzed = MemoryClient(broker, version)
    fuzzed.send(Connect("fuzzed", version, clean_start=data.draw(st.booleans())))
    for chunk in data.draw(chunks(version)):
        fuzzed.send_raw(chunk)  # raises only if the broker itself is broken
        clock.advance(data.draw(st.sampled_from([0, 0, 1, 100])))
    fuzzed.drop()
    clock.advance(1000)
    # The broker still serves: a new client connects, publishes, and the watcher receives.
    watcher.received()
    probe = MemoryClient(broker, 5)
    probe.send(Connect("probe", 5), PingReq(), Publish("probe/t", b"alive"))
    assert PingResp() in probe.received()
    assert any(isinstance(p, Publish) and p.payload == b"alive" for p in watcher.received())
    # And keeps its books straight: the fuzzed client is gone, its session only if persistent.
    assert all(conn.client_id != "fuzzed" for conn in broker.connections)
