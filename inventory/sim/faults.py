"""A fault-injecting HTTP proxy: forwards to an upstream, failing chosen requests on cue."""

from __future__ import annotations

import http.client
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

# Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the proxy recomputes itself.
_NOT_FORWARDED = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}
)


@dataclass(frozen=True)
class ProxiedRequest:
    """What a fault's predicate sees of one request."""

    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    @property
    def form(self) -> dict[str, list[str]]:
        """The urlencoded body, where EC2 and RDS (AWS query protocols) put the action."""
        if not self.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return {}
        return parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    @property
    def action(self) -> str | None:
        """The AWS query-protocol action (DescribeInstances, DescribeDBInstances), if any."""
        values = self.form.get("Action") or self.query.get("Action")
        return values[0] if values else None


Predicate = Callable[[ProxiedRequest], bool]


@dataclass
class Fault:
    """One switchable fault: the requests it matches, what it does, and how many times.

    Exactly one effect applies: `status` (answer with status/body/headers), `reset` (abort the
    TCP connection with an RST before any response byte) or `delay` (hold the request that many
    seconds, then forward it). `times=None` keeps the fault on until it is removed.
    """

    when: Predicate
    status: int | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    delay: float = 0.0
    times: int | None = None
    hits: int = 0

    def __post_init__(self) -> None:
        effects = (self.status is not None) + self.reset + (self.delay > 0)
        if effects != 1:
            raise ValueError("a Fault needs exactly one of status, reset or delay")


def action_is(*actions: str) -> Predicate:
    """Matches AWS query-protocol calls (EC2, RDS) by action name."""
    return lambda request: request.action in actions


def has_param(name: str) -> Predicate:
    """Matches calls carrying a parameter (e.g. NextToken: every page after the first)."""
    return lambda request: name in request.form or name in request.query


def s3_call(method: str, *, bucket: bool, subresource: str | None = None) -> Predicate:
    """Matches path-style S3 REST calls: on the service root (ListBuckets) or on a bucket."""

    def matches(request: ProxiedRequest) -> bool:
        if request.method != method or request.action is not None:
            return False
        on_bucket = request.path.strip("/") != ""
        return on_bucket == bucket and (subresource is None or subresource in request.query)

    return matches


def every_request(request: ProxiedRequest) -> bool:
    return True


def aws_error(protocol: str, code: str, message: str) -> bytes:
    """The XML error body an AWS-compatible endpoint sends, for the client's protocol.

    `protocol` is botocore's name for it: "ec2", "query" (RDS, IAM, STS) or "rest-xml" (S3).
    """
    if protocol == "ec2":
        return (
            f"<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error><Code>{code}</Code>"
            f"<Message>{message}</Message></Error></Errors><RequestID>fault-0</RequestID></Response>"
        ).encode()
    if protocol == "query":
        return (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}"
            f"</Message></Error><RequestId>fault-0</RequestId></ErrorResponse>"
        ).encode()
    if protocol == "rest-xml":
        return (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
            f"<Message>{message}</Message><RequestId>fault-0</RequestId></Error>"
        ).encode()
    raise ValueError(f"unknown AWS protocol {protocol!r}: use ec2, query or rest-xml")


# S3 names the root of a result after the result, not after the operation.
_REST_XML_ROOTS = {"ListBuckets": "ListAllMyBucketsResult"}


def aws_empty_result(protocol: str, operation: str) -> bytes:
    """A well-formed success envelope for `operation` with nothing inside, not even the empty
    list a real endpoint sends when it has nothing to list (`<reservationSet/>`, `<Buckets/>`).

    `protocol` as for `aws_error`; `operation` is the API name (DescribeInstances, ListBuckets).
    """
    if protocol == "ec2":
        return (
            f'<?xml version="1.0" encoding="UTF-8"?><{operation}Response'
            f' xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fault-0</requestId>'
            f"</{operation}Response>"
        ).encode()
    if protocol == "query":
        return (
            f"<{operation}Response><{operation}Result></{operation}Result><ResponseMetadata>"
            f"<RequestId>fault-0</RequestId></ResponseMetadata></{operation}Response>"
        ).encode()
    if protocol == "rest-xml":
        root = _REST_XML_ROOTS.get(operation, f"{operation}Result")
        return (
            f'<?xml version="1.0" encoding="UTF-8"?>'
            f'<{root} xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></{root}>'
        ).encode()
    raise ValueError(f"unknown AWS protocol {protocol!r}: use ec2, query or rest-xml")


class FaultProxy:
    """An HTTP/1.1 proxy on a free loopback port in front of one upstream http:// endpoint.

    Faults are checked in the order they were added; the first live one that matches a request
    decides its fate, otherwise the request is forwarded unchanged. Every request is recorded
    in `requests` so tests can assert what the client actually sent.
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"FaultProxy forwards to an http:// upstream, not {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.faults: list[Fault] = []
        self.requests: list[ProxiedRequest] = []
        self._lock = threading.Lock()
        # Set on stop, so a held (delayed) request lets go at once instead of at its deadline.
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # Keep-alive handler threads may wait on an idle client: never join them on close.
        server.block_on_close = False
        server.daemon_threads = True
        self._server = server
        # A short poll keeps stop() quick; the proxy only ever runs for tests and demos.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def respond(
        self,
        when: Predicate,
        status: int,
        body: bytes = b"",
        *,
        times: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Fault:
        return self.add(Fault(when, status=status, body=body, headers=headers or {}, times=times))

    def respond_ok(
        self,
        when: Predicate,
        body: bytes = b"",
        *,
        times: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Fault:
        """A failure disguised as success: HTTP 200 with `body` (an error document, nothing,
        `{}`, a Status document) instead of the upstream's answer, as broken gateways send."""
        return self.respond(when, 200, body, times=times, headers=headers)

    def reset(self, when: Predicate, *, times: int | None = None) -> Fault:
        return self.add(Fault(when, reset=True, times=times))

    def delay(self, when: Predicate, seconds: float, *, times: int | None = None) -> Fault:
        return self.add(Fault(when, delay=seconds, times=times))

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def _take(self, request: ProxiedRequest) -> Fault | None:
        with self._lock:
            self.requests.append(request)
            for fault in self.faults:
                if (fault.times is None or fault.hits < fault.times) and fault.when(request):
                    fault.hits += 1
                    return fault
        return None


class _ProxyHandler(BaseHTTPRequestHandler):
    owner: FaultProxy
    # HTTP/1.1 so clients keep connections alive, as they do against real endpoints.
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # tests read `requests`; access logs would only drown pytest's output

    def _handle(self) -> None:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            self.send_error(501, "chunked request bodies are not supported by FaultProxy")
            return
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = ProxiedRequest(self.command, self.path, headers, body)
        fault = self.owner._take(request)
        if fault is not None and fault.reset:
            self._reset_connection()
            return
        if fault is not None and fault.status is not None:
            self._answer(fault.status, fault.headers, fault.body)
            return
        if fault is not None and fault.delay > 0 and self.owner._stopping.wait(fault.delay):
            self.close_connection = True
            return
        self._forward(request)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "content-type" not in {name.lower() for name in headers}:
            self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self, request: ProxiedRequest) -> None:
        upstream = http.client.HTTPConnection(
            self.owner.upstream_host, self.owner.upstream_port, timeout=120
        )
        try:
            upstream.request(
                request.method,
                request.target,
                body=request.body or None,
                headers={k: v for k, v in request.headers.items() if k not in _NOT_FORWARDED},
            )
            response = upstream.getresponse()
            body = response.read()
            headers = {k: v for k, v in response.getheaders() if k.lower() not in _NOT_FORWARDED}
        finally:
            upstream.close()
        self._answer(response.status, headers, body)

    def _reset_connection(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST: the client sees "connection
        # reset by peer", as from a crashed load balancer, rather than an orderly FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.rfile.close()  # the makefile reference would otherwise keep the socket open
        self.connection.close()
