"""The HTTP endpoints of an agent, embedded or one scale-out role: `/healthz` (the process answers), `/readyz`
(what the process says it needs: the database, the bus, its consumers bound) and `/metrics` (Prometheus)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger("healthswarm.agent.health")
# (checks that must all pass, facts shown alongside: e.g. a correlator on standby is ready, just not active)
Readiness = Callable[[], tuple[dict[str, bool], dict[str, Any]]]


def _handler(readiness: Readiness, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._send(200, b"ok\n", "text/plain")
            elif self.path == "/readyz":
                checks, facts = readiness()
                ready = all(checks.values())
                body = orjson.dumps({"ready": ready, "checks": checks, **facts}) + b"\n"
                self._send(200 if ready else 503, body, "application/json")
            elif self.path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # probes every few seconds would drown the log

    return Handler


def serve(port: int, readiness: Readiness, registry: CollectorRegistry, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Start serving `registry` and the readiness in a daemon thread; port 0 picks a free one (read it from
    `server.server_port`)."""
    server = ThreadingHTTPServer((host, port), _handler(readiness, registry))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="agent-http", daemon=True).start()
    log.info("health and metrics endpoints listening", extra={"port": server.server_port})
    return server
