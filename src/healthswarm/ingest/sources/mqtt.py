"""MQTT subscription (paho-mqtt 2.x) as an ingest source: QoS 1, acked only after the store commit.

paho's `manual_ack` holds back the PUBACK of each message until `ack()`, which the pipeline calls
once the transaction holding the message's events has committed. The session is persistent
(`clean_session=False`, a client id stable per topic), so the broker keeps what was not acked, and
what is published while the ingester is down, and delivers it again on reconnect: a kill -9 loses
nothing, and a redelivered message yields the same keys (a hash of its bytes: MQTT gives a message
no id that survives a reconnect), so it is stored once.

Mosquitto lets only `max_inflight_messages` (20 by default) un-acked QoS 1 messages be in flight per
client: the pipeline flushes a batch as soon as the queue runs dry (`latency`), never waiting for a
full batch that the broker would not send.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from healthswarm.bus.base import BusError


@dataclass(eq=False)
class MqttMessage:
    subject: str
    data: bytes
    mid: int
    qos: int
    id: str = ""
    _client: Any = field(default=None, repr=False)

    def ack(self) -> None:
        if self.qos > 0:
            self._client.ack(self.mid, self.qos)


def parse_url(url: str) -> tuple[str, int, str]:
    """mqtt://host[:port]/topic → (host, port, topic). The topic is everything after the first '/'
    taken literally, so '#' and '+' wildcards need no escaping."""
    rest = url.removeprefix("mqtt://")
    hostport, _, topic = rest.partition("/")
    host, _, port = hostport.partition(":")
    if not host or not topic:
        raise BusError(f"{url!r}: expected mqtt://host:port/topic")
    return host, int(port or 1883), topic


class MqttSource:
    def __init__(self, host: str, port: int, topic: str, client_id: str, *, qos: int = 1,
                 connect_timeout: float = 5.0) -> None:
        self.topic = topic
        self.qos = qos
        self._queue: queue.Queue[MqttMessage] = queue.Queue()
        self._subscribed = threading.Event()
        self._failure = ""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                             protocol=mqtt.MQTTv311, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client
        try:
            client.connect(host, port, keepalive=30)
        except OSError as exc:
            raise BusError(f"MQTT at {host}:{port}: cannot connect ({exc})") from None
        client.loop_start()
        if not self._subscribed.wait(connect_timeout):
            self.close()
            raise BusError(f"MQTT at {host}:{port}: no subscription to {topic!r} within {connect_timeout}s "
                           f"{self._failure}".rstrip())

    @classmethod
    def from_url(cls, url: str, client_prefix: str = "healthswarm-ingest", **kwargs: Any) -> MqttSource:
        host, port, topic = parse_url(url)
        return cls(host, port, topic, cls.client_id_for(client_prefix, topic), **kwargs)

    @staticmethod
    def client_id_for(prefix: str, topic: str) -> str:
        """Stable per topic: the broker keeps this client's session (and un-acked messages) for it."""
        return f"{prefix}-{hashlib.blake2b(topic.encode(), digest_size=6).hexdigest()}"

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self._failure = f"(connect refused: {reason})"
            return
        client.subscribe(self.topic, qos=self.qos)

    def _on_subscribe(self, _client: Any, _userdata: Any, _mid: int, reasons: Any, _props: Any) -> None:
        if any(r.is_failure for r in reasons):
            self._failure = f"(subscribe refused: {reasons})"
            return
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._queue.put(MqttMessage(message.topic, bytes(message.payload), message.mid, message.qos,
                                    _client=client))

    def fetch(self, max_messages: int = 100, timeout: float = 1.0) -> list[MqttMessage]:
        """What has arrived, up to `max_messages`, waiting at most `timeout` for the first."""
        try:
            first = self._queue.get(timeout=timeout)
        except queue.Empty:
            return []
        out = [first]
        deadline = time.monotonic() + 0.01  # a short grace to gather a burst into one transaction
        while len(out) < max_messages:
            try:
                out.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return out

    def close(self) -> None:
        # un-acked messages stay in the persistent session at the broker: redelivered next time
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> MqttSource:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
