"""A faulty HTTP proxy in front of DynamoDB Local, programmable per test.

The wallet's boto3 client points at the proxy (`make_dynamodb_client(endpoint_url=proxy.url)`). Every DynamoDB request
(POST with `X-Amz-Target: DynamoDB_20120810.<Operation>`) goes through the first rule that matches its operation and
still has hits left; with no such rule it is forwarded untouched. What a rule can do:

  PASS           forward, reply what DynamoDB Local replied
  THROTTLE       HTTP 400 ThrottlingException, without forwarding
  PROVISIONED    HTTP 400 ProvisionedThroughputExceededException, without forwarding
  INTERNAL       HTTP 500 InternalServerError, without forwarding
  CANCEL         HTTP 400 TransactionCanceledException with one CancellationReason per item, without forwarding
  DELAY          sleep `delay` seconds (longer than the client's read timeout), then forward (the write lands late,
                 after the client gave up) or, with forward=False, drop it (the request was lost)
  FORWARD_DROP   forward (the write really happens), then close the connection without a reply: the crash between
                 the write and the reply
  DROP           close the connection without forwarding

The error bodies are the shapes botocore parses for the JSON protocol: `__type` (the part after `#` is the code),
`message`/`Message`, and for TransactionCanceledException the modeled `CancellationReasons` member.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

TARGET_PREFIX = "DynamoDB_20120810."
ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
# Hop-by-hop headers: never passed on.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}

# What DynamoDB says for each cancellation reason code (the codes DynamoDB documents for TransactWriteItems).
REASON_MESSAGES = {
    "None": None,
    "ConditionalCheckFailed": "The conditional request failed",
    "ThrottlingError": "Throughput exceeds the current capacity for one or more global secondary indexes. "
    "DynamoDB is automatically scaling your index so please try again shortly.",
    "TransactionConflict": "Transaction is ongoing for the item",
    "ProvisionedThroughputExceeded": "The level of configured provisioned throughput for the table was exceeded. "
    "Consider increasing your provisioning level with the UpdateTable API",
    "ValidationError": "One or more parameter values were invalid",
    "ItemCollectionSizeLimitExceeded": "Collection size exceeded.",
}


class Action(StrEnum):
    PASS = "pass"
    THROTTLE = "throttle"
    PROVISIONED = "provisioned"
    INTERNAL = "internal"
    CANCEL = "cancel"
    DELAY = "delay"
    FORWARD_DROP = "forward_drop"
    DROP = "drop"


@dataclass
class Rule:
    operation: str | None  # e.g. "TransactWriteItems"; None matches every operation
    action: Action
    count: int | None = 1  # how many requests it takes; None: every matching request until cleared
    reasons: tuple[str, ...] = ()  # CANCEL: one code per item of the transaction
    delay: float = 1.7  # DELAY: seconds (the client's read timeout is 1.5 s)
    forward: bool = True  # DELAY: forward after the delay, or drop the request
    hits: int = 0

    def takes(self, operation: str) -> bool:
        if self.operation is not None and self.operation != operation:
            return False
        return self.count is None or self.hits < self.count


@dataclass(frozen=True)
class Seen:
    operation: str
    action: Action
    forwarded: bool
    status: int | None  # what DynamoDB Local answered when forwarded, or the injected status; None: no reply
    token: str | None = None  # TransactWriteItems' ClientRequestToken (botocore fills it in; its retries reuse it)


@dataclass
class _State:
    rules: list[Rule] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    in_flight: int = 0


def error_body(code: str, message: str, **extra: Any) -> bytes:
    return json.dumps({"__type": ERROR_PREFIX + code, "message": message, **extra}).encode()


def cancellation_body(reasons: tuple[str, ...]) -> bytes:
    items = []
    for code in reasons:
        reason: dict[str, str] = {"Code": code}
        message = REASON_MESSAGES.get(code)
        if message:
            reason["Message"] = message
        items.append(reason)
    message = f"Transaction cancelled, please refer cancellation reasons for specific reasons [{', '.join(reasons)}]"
    return json.dumps(
        {"__type": ERROR_PREFIX + "TransactionCanceledException", "Message": message, "CancellationReasons": items}
    ).encode()


def _client_token(body: bytes) -> str | None:
    try:
        token = json.loads(body).get("ClientRequestToken")
    except (ValueError, AttributeError):
        return None
    return token if isinstance(token, str) else None


class FaultyProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._state = _State()
        self._lock = threading.Condition()
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="faulty-proxy", daemon=True)

    # --- life ---------------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FaultyProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self.wait_idle(30)  # a delayed request lands (or is dropped) first
        self._server.hang_up_idle()  # the clients' kept-alive connections: their threads are waiting to read
        self._server.server_close()  # joins the handler threads
        self._thread.join(5)

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- programming ----------------------------------------------------------------------------------------------

    def add(self, operation: str | None, action: Action, count: int | None = 1, **options: Any) -> Rule:
        rule = Rule(operation, action, count, **options)
        with self._lock:
            self._state.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._state.rules.clear()

    def reset_log(self) -> None:
        with self._lock:
            self._state.seen.clear()

    def seen(self, operation: str | None = None) -> list[Seen]:
        """The log, once every request inside the proxy is logged: a request is logged after its reply is written,
        so the client can hold the reply a moment before the log has it."""
        self.wait_idle()
        with self._lock:
            return [s for s in self._state.seen if operation is None or s.operation == operation]

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Until no request is inside the proxy (a delayed write has landed or been dropped)."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._state.in_flight == 0, timeout):
                raise TimeoutError("the proxy still holds a request")

    # --- used by the handler ---------------------------------------------------------------------------------------

    def _choose(self, operation: str) -> Rule | None:
        with self._lock:
            self._state.in_flight += 1
            for rule in self._state.rules:
                if rule.takes(operation):
                    rule.hits += 1
                    return rule
            return None

    def _done(self, seen: Seen) -> None:
        with self._lock:
            self._state.seen.append(seen)
            self._state.in_flight -= 1
            self._lock.notify_all()

    def _forward(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for every handler (a delayed write must land before the audit)
    block_on_close = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], proxy: FaultyProxy) -> None:
        super().__init__(address, handler)
        self.proxy = proxy
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def hang_up_idle(self) -> None:
        with self.connections_lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        proxy = self.server.proxy
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target", "")
        operation = target.removeprefix(TARGET_PREFIX)
        headers = {key: value for key, value in self.headers.items() if key.lower() not in _HOP}
        rule = proxy._choose(operation)
        action = rule.action if rule is not None else Action.PASS
        forwarded = False
        status: int | None = None
        try:
            match action:
                case Action.PASS:
                    status, reply_headers, reply = proxy._forward(self.path, headers, body)
                    forwarded = True
                    self._reply(status, reply, reply_headers)
                case Action.THROTTLE:
                    status = 400
                    self._reply(status, error_body("ThrottlingException", "Rate of requests exceeds the allowed"))
                case Action.PROVISIONED:
                    status = 400
                    message = "The level of configured provisioned throughput for the table was exceeded."
                    self._reply(status, error_body("ProvisionedThroughputExceededException", message))
                case Action.INTERNAL:
                    status = 500
                    self._reply(status, error_body("InternalServerError", "Internal server error"))
                case Action.CANCEL:
                    assert rule is not None
                    status = 400
                    self._reply(status, cancellation_body(rule.reasons))
                case Action.DELAY:
                    assert rule is not None
                    time.sleep(rule.delay)
                    if rule.forward:
                        status, reply_headers, reply = proxy._forward(self.path, headers, body)
                        forwarded = True
                        self._reply(status, reply, reply_headers)  # to a client that has most likely gone
                    else:
                        self._hang_up()
                case Action.FORWARD_DROP:
                    status, _, _ = proxy._forward(self.path, headers, body)
                    forwarded = True
                    self._hang_up()
                    status = None
                case Action.DROP:
                    self._hang_up()
        except OSError:
            self.close_connection = True  # the client gave up first (read timeout): nobody to answer
        finally:
            proxy._done(Seen(operation, action, forwarded, status, _client_token(body)))

    def _reply(self, status: int, body: bytes, upstream_headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response_only(status)
        for key, value in upstream_headers or [("Content-Type", "application/x-amz-json-1.0")]:
            if key.lower() in _HOP or key.lower() == "content-length":
                continue
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _hang_up(self) -> None:
        """Close the connection without a byte of reply."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
