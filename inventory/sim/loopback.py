"""A simulator's HTTP service on 127.0.0.1: a free port, keep-alive, and a clean stop."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self


class LoopbackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (a reset fault, a timeout test, `stop()` closing keep-alive
        # sockets) is expected here; anything else is a simulator bug and must show.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class LoopbackHandler(BaseHTTPRequestHandler):
    """A keep-alive handler whose connections the service can close on `stop()`; the
    service is a class attribute of a per-server subclass."""

    sim: LoopbackService
    protocol_version = "HTTP/1.1"  # keep-alive, as client-go, urllib3 and keystoneauth expect
    timeout = 60  # an idle keep-alive connection is closed after this long
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm meets the
        # client's delayed ACK and every keep-alive response waits ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.sim._lock:
            self.sim._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.sim._lock:
                self.sim._connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests and benchmarks read `sim.requests` instead


class LoopbackService:
    """Start, stop and address a simulator served by `handler` on a free loopback port.

    A subclass names its thread and its handler (`handler_class`: the handler is defined
    after the simulator in its module), and calls `_init_loopback()` from `__init__`; `_lock`
    also guards the subclass's own state."""

    thread_name: ClassVar[str]

    def handler_class(self) -> type[LoopbackHandler]:
        raise NotImplementedError

    def _init_loopback(self) -> None:
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    def start(self) -> Self:
        if self._server is not None:
            return self
        handler = type("Handler", (self.handler_class(),), {"sim": self})
        server = LoopbackHTTPServer(("127.0.0.1", 0), handler)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name=self.thread_name, kwargs={"poll_interval": 0.05}
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        # Keep-alive connections would otherwise hold their handler threads until they time out.
        with self._lock:
            connections, self._connections = set(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
