"""A TCP proxy in front of Redis that the tests break on purpose.

`partition()` drops every byte and leaves every connection open, as a network partition or a NAT
that lost its state does: connections open during it never carry a byte again (half-open), while
connections made after `heal()` work. `refuse()` closes every connection and refuses new ones until
`heal()`, as a Redis that went down does. `break_when(marker, ...)` does either the moment `marker`
passes (from Redis to a client, or from a client to Redis: then that command is dropped), and heals
after some seconds.
"""

import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

CHUNK = 65536


@dataclass
class Trigger:
    marker: bytes
    mode: str  # "partition" or "refuse"
    seconds: float
    to_redis: bool  # watch what clients send (the command with the marker is dropped), else what Redis sends
    fired_at: float | None = None
    fired: threading.Event = field(default_factory=threading.Event)


class Link:
    """One client connection and its connection to Redis."""

    def __init__(self, client: socket.socket, server: socket.socket):
        self.client, self.server = client, server
        self.dead = False  # a half-open connection: open at both ends, nothing passes

    def close(self) -> None:
        _close(self.client)
        _close(self.server)


class FaultyProxy:
    def __init__(self, target_url: str):
        parts = urlsplit(target_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.listener = socket.create_server(("127.0.0.1", 0))
        userinfo, at, _ = parts.netloc.rpartition("@")
        self.url = urlunsplit(parts._replace(netloc=f"{userinfo}{at}127.0.0.1:{self.listener.getsockname()[1]}"))
        self.partitioned = False
        self.refusing = False
        self.trigger: Trigger | None = None
        self.links: list[Link] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def partition(self) -> None:
        with self._lock:
            self.partitioned = True
            for link in self.links:
                link.dead = True

    def refuse(self) -> None:
        with self._lock:
            self.refusing = True
            for link in self.links:
                link.close()
            self.links.clear()

    def heal(self) -> None:
        with self._lock:
            self.partitioned = self.refusing = False

    def break_when(self, marker: str, mode: str, seconds: float, to_redis: bool = False) -> Trigger:
        """Partition or refuse for `seconds` once `marker` passes."""
        self.trigger = Trigger(marker.encode(), mode, seconds, to_redis)
        return self.trigger

    def close(self) -> None:
        self._closed = True
        _close(self.listener)
        self.refuse()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing:
                _close(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            link = Link(client, server)
            with self._lock:
                link.dead = self.partitioned
                self.links.append(link)
            threading.Thread(target=self._pump, args=(link, client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(link, server, client, True), daemon=True).start()

    def _pump(self, link: Link, source: socket.socket, sink: socket.socket, from_redis: bool) -> None:
        try:
            while True:
                data = source.recv(CHUNK)
                if not data:
                    break
                if link.dead:  # dropped; the connection stays open and silent
                    continue
                if not from_redis and self._maybe_fire(data, to_redis=True):
                    continue
                sink.sendall(data)
                if from_redis:
                    self._maybe_fire(data, to_redis=False)
        except OSError:
            pass
        if not link.dead:
            link.close()

    def _maybe_fire(self, data: bytes, to_redis: bool) -> bool:
        trigger = self.trigger
        if trigger is None or trigger.to_redis != to_redis or trigger.fired.is_set() or trigger.marker not in data:
            return False
        trigger.fired_at = time.monotonic()
        trigger.fired.set()
        self.partition() if trigger.mode == "partition" else self.refuse()
        timer = threading.Timer(trigger.seconds, self.heal)
        timer.daemon = True
        timer.start()
        return True


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
