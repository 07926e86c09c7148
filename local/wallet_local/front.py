"""A small local front: HTTP in, the API Gateway event the Lambda gets, the handler's reply out. The billing's route
is an HTTP API's (payload format 2.0), the others a REST API's (v1 proxy), as in template.yaml.

It calls the same handler modules that run in Lambda (functions/<name>/app.py), so what the tests exercise through
it is the deployed code path minus API Gateway itself.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import multiprocessing
import os
import re
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from wallet_local.paths import FUNCTIONS
from wallet_local.sigv4 import LocalCredentials, SignatureRefused, verify

STAGE = "local"
MAX_BODY = 10 * 1024 * 1024  # API Gateway's own payload limit


@dataclass(frozen=True)
class Route:
    method: str
    resource: str  # API Gateway resource path, e.g. /play/{application}
    function: str  # folder under functions/
    signed: bool = False  # AWS_IAM authorization: the request must carry a valid SigV4 signature (sigv4.py)
    payload: str = "1.0"  # the event's format: "1.0" a REST API's, "2.0" an HTTP API's

    def event(
        self,
        path_parameters: dict[str, str],
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        source_ip: str,
    ) -> dict[str, Any]:
        build = http_api_event if self.payload == "2.0" else api_gateway_event
        return build(self, path_parameters, method, path, query, headers, body, source_ip)

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        # /play/{application} -> /play/(?P<application>[^/]+); a greedy {proxy+} may span several segments.
        pattern = re.escape(self.resource)
        pattern = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", pattern)
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
        found = re.fullmatch(pattern, path)
        return found.groupdict() if found else None


# BillingApi, an HTTP API: the Games Server's one route.
BILLING_ROUTE = Route("POST", "/do", "billing", payload="2.0")


class LambdaContext:
    """Enough of the Lambda context object for Powertools."""

    def __init__(self, function_name: str = "billing") -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + 10

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_function(function: str) -> ModuleType:
    """functions/<function>/app.py, imported once per process (as Lambda imports it once per instance) under a name
    of its own: the handlers build their wallet and catalogue on first use, not at import."""
    module_name = f"wallet_function_{function}"
    module = sys.modules.get(module_name)
    if module is None:
        module = import_file(module_name, FUNCTIONS / function / "app.py")
    return module


def load_handler(function: str) -> Any:
    return load_function(function).lambda_handler


class LambdaInstances:
    """Lambda's concurrency model: each instance is a process that serves one event at a time, with its own
    module-level state; a request that finds every instance busy waits for one, or gets a new one (a cold start) up
    to `max_instances`. Processes, not threads: Powertools' resolver keeps the current event on a class attribute
    (BaseRouter.current_event), which threads of one interpreter would share."""

    def __init__(self, functions: list[str], max_instances: int) -> None:
        from concurrent.futures import ProcessPoolExecutor

        # spawn: the parent runs server threads (and moto's), which a fork would copy mid-flight.
        context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(
            max_workers=max_instances, mp_context=context, initializer=_start_instance, initargs=(functions,)
        )

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = self._pool.submit(_invoke, function, event).result()
        return reply

    def warm(self, count: int) -> None:
        """Start `count` instances now rather than on the first requests (cold starts before the banner)."""
        for future in [self._pool.submit(_invoke, None, {}) for _ in range(count)]:
            future.result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


_instance_handlers: dict[str, Any] = {}


def _start_instance(functions: list[str]) -> None:
    # Ctrl-C reaches the whole process group; the parent shuts the instances down in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    preload = os.environ.get("WALLET_LOCAL_PRELOAD")
    if preload:  # tests and profiling: a module to import into every instance before the handlers
        importlib.import_module(preload)
    for function in functions:
        _instance_handlers[function] = load_handler(function)


def _invoke(function: str | None, event: dict[str, Any]) -> dict[str, Any]:
    if function is None:
        time.sleep(0.05)  # warm-up: hold this instance so the next warm-up call lands on another
        return {}
    reply: dict[str, Any] = _instance_handlers[function](event, LambdaContext(function))
    return reply


def import_file(module_name: str, path: Path) -> ModuleType:
    """Import a file as a module of its own name."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def api_gateway_event(
    route: Route,
    path_parameters: dict[str, str],
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    source_ip: str,
) -> dict[str, Any]:
    params = parse_qs(query, keep_blank_values=True)
    text, is_base64 = _text_body(body)
    return {
        "resource": route.resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "queryStringParameters": {key: values[-1] for key, values in params.items()} or None,
        "multiValueQueryStringParameters": params or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": route.resource,
            "httpMethod": method,
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "accountId": "123456789012",
            "apiId": "local",
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent", "")},
        },
        "body": text,
        "isBase64Encoded": is_base64,
    }


def _text_body(body: bytes) -> tuple[str | None, bool]:
    """The body as API Gateway hands it over: text when it is UTF-8, else base64 (and the flag saying so)."""
    try:
        return (body.decode("utf-8") if body else None), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def http_api_event(
    route: Route,
    path_parameters: dict[str, str],
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    source_ip: str,
) -> dict[str, Any]:
    """An HTTP API's event (payload format 2.0): lower-case headers, the route key, requestContext.http's source."""
    params = parse_qs(query, keep_blank_values=True)
    text, is_base64 = _text_body(body)
    now = time.time()
    route_key = f"{route.method} {route.resource}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": f"/{STAGE}{path}",
        "rawQueryString": query,
        "headers": {key.lower(): value for key, value in headers.items()},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method,
                "path": f"/{STAGE}{path}",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("User-Agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": STAGE,
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if params:  # repeated names joined with commas, as an HTTP API does
        event["queryStringParameters"] = {key: ",".join(values) for key, values in params.items()}
    if path_parameters:
        event["pathParameters"] = path_parameters
    if text is not None:
        event["body"] = text
    return event


def billing_event(body: str | bytes | None, source_ip: str = "203.0.113.10") -> dict[str, Any]:
    """The event the billing's HTTP API gives its Lambda for one POST /do (tests, bench, probes)."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else (body or b"")
    return http_api_event(
        BILLING_ROUTE,
        {},
        "POST",
        "/do",
        "",
        {"Content-Type": "application/json"},
        raw,
        source_ip,
    )


class LocalFront(ThreadingHTTPServer):
    daemon_threads = True
    # Many concurrent clients in the stress tests: a deep accept queue instead of refused connections.
    request_queue_size = 256

    def __init__(
        self,
        address: tuple[str, int],
        routes: list[Route],
        static: dict[str, Path] | None = None,
        bucket: str | None = None,
        max_instances: int = 8,
        credentials: LocalCredentials | None = None,
    ) -> None:
        super().__init__(address, _Handler)
        self.routes = routes
        self.credentials = credentials or LocalCredentials()
        self.static = static or {}
        self.bucket = bucket  # CloudFront's default behaviour: anything else comes from the site's bucket
        self.instances = LambdaInstances(sorted({route.function for route in routes}), max_instances)

    def server_close(self) -> None:
        super().server_close()
        self.instances.shutdown()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: LocalFront
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm on, keep-alive clients wait ~40 ms for the
    # second one (delayed ACK). API Gateway has no such delay, so neither should its stand-in.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, {"Content-Type": "application/json"}, b'{"message":"Request Entity Too Large"}')
            return
        body = self.rfile.read(length) if length else b""
        for route in self.server.routes:
            parameters = route.match(self.command, parts.path)
            if parameters is None:
                continue
            headers = dict(self.headers.items())
            event = route.event(
                parameters, self.command, parts.path, parts.query, headers, body, self.client_address[0]
            )
            if route.signed:
                try:
                    caller = verify(self.server.credentials, self.command, self._url(), headers, body)
                except SignatureRefused as exc:
                    # API Gateway's 403 for a request its IAM authorization refuses.
                    message = json.dumps({"message": f"Forbidden: {exc}"}).encode()
                    self._send(403, {"Content-Type": "application/json"}, message)
                    return
                event["requestContext"]["identity"].update(
                    accessKey=caller.access_key,
                    caller=caller.access_key,
                    user=caller.access_key,
                    userArn=caller.user_arn,
                )
            reply = self.server.instances.invoke(route.function, event)
            self._send_lambda_reply(reply)
            return
        if self.command == "GET" and (self._serve_static(parts.path) or self._serve_bucket(parts.path)):
            return
        # API Gateway's own answer for an unknown route.
        self._send(403, {"Content-Type": "application/json"}, b'{"message":"Missing Authentication Token"}')

    def _url(self) -> str:
        """The URL the client signed: its Host header and the request line's path and query, as sent."""
        return f"http://{self.headers.get('Host', '')}{self.path}"

    def _serve_static(self, path: str) -> bool:
        for prefix, directory in self.server.static.items():
            if not path.startswith(prefix + "/"):
                continue
            target = (directory / path[len(prefix) + 1 :]).resolve()
            if directory.resolve() not in target.parents or not target.is_file():
                return False
            kind = {
                ".js": "application/javascript",
                ".json": "application/json",
                ".png": "image/png",
                ".svg": "image/svg+xml",
                ".html": "text/html; charset=utf-8",
                ".css": "text/css",
            }
            self._send(200, {"Content-Type": kind.get(target.suffix, "application/octet-stream")}, target.read_bytes())
            return True
        return False

    def _serve_bucket(self, path: str) -> bool:
        if not self.server.bucket or path == "/":
            return False
        import boto3
        from botocore.exceptions import ClientError

        try:
            found = boto3.client("s3").get_object(Bucket=self.server.bucket, Key=path.lstrip("/"))
        except ClientError:
            return False
        self._send(200, {"Content-Type": found.get("ContentType", "application/octet-stream")}, found["Body"].read())
        return True

    def _send_lambda_reply(self, reply: dict[str, Any]) -> None:
        body = reply.get("body") or ""
        payload = base64.b64decode(body) if reply.get("isBase64Encoded") else body.encode("utf-8")
        headers = dict(reply.get("headers") or {})
        for key, values in (reply.get("multiValueHeaders") or {}).items():
            headers[key] = ", ".join(values)
        self._send(int(reply.get("statusCode", 200)), headers, payload)

    def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the handlers log each request themselves
