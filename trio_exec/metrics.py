"""The daemon's metrics, served as `GET /metrics` in the Prometheus text format.

Rules:
- Each daemon owns its `CollectorRegistry` (never prometheus-client's global one), so daemons in
  one process (tests, embedders) never share counters.
- The services do not know this module: it is their `SessionEvents` (and so the `ProcessEvents`
  of every process table) and the connections' `ConnectionEvents`, passed down by the daemon.
- What can be counted where it happens is a counter bumped there, cheaply (label children are
  looked up once per method and kept). What is a state (sessions attached or parked, processes
  running, output bytes retained) is read from the session registry when scraped, so it costs
  nothing between scrapes and can never drift.
- The `method` label takes only the protocol's method names; anything else a peer sends counts
  as `other`, so a peer cannot grow the label set.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from trio_exec.proto.methods import METHODS
from trio_exec.rpc.events import ConnectionEvents
from trio_exec.session.events import SessionEvents
from trio_exec.session.registry import SessionRegistry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OTHER_METHOD = "other"
#: Request latency buckets, in seconds: sub-millisecond calls up to long-polls.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0)


class _RegistryState(Collector):
    """Gauges read from the session registry at scrape time."""

    def __init__(self, registry: SessionRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        attached = parked = running = retained = 0
        for session in self._registry.sessions():
            if session.attachment is None:
                parked += 1
            else:
                attached += 1
            for process in session.list_processes():
                running += process.state == "running"
                retained += process.log.retained_bytes
        sessions = GaugeMetricFamily("trio_exec_sessions", "Live sessions, by state",
                                     labels=["state"])
        sessions.add_metric(["attached"], attached)
        sessions.add_metric(["parked"], parked)
        yield sessions
        yield GaugeMetricFamily("trio_exec_processes_running",
                                "Processes whose exit has not been recorded", value=running)
        yield GaugeMetricFamily("trio_exec_output_retained_bytes",
                                "Output bytes kept for reading, over every process",
                                value=retained)


class DaemonMetrics(SessionEvents, ConnectionEvents):
    """The metrics of one daemon and the events that feed them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Gauge("trio_exec_connections_open", "Open WebSocket connections",
                                 registry=r)
        self.connections_total = Counter("trio_exec_connections_accepted",
                                         "WebSocket connections accepted", registry=r)
        self.sessions_created = Counter("trio_exec_sessions_created", "Sessions created",
                                        registry=r)
        self.resumes = Counter("trio_exec_session_resumes", "Sessions resumed", registry=r)
        self.takeovers = Counter("trio_exec_session_takeovers",
                                 "Resumes that took a session from another connection",
                                 registry=r)
        self.expiries = Counter("trio_exec_sessions_expired",
                                "Parked sessions not resumed in time", registry=r)
        self.processes_started = Counter("trio_exec_processes_started", "Processes spawned",
                                         registry=r)
        self.exits = Counter("trio_exec_process_exits", "Process exits, by kind", ["kind"],
                             registry=r)
        self.output_bytes = Counter("trio_exec_output_bytes", "Output bytes read from processes",
                                    registry=r)
        self.requests = Counter("trio_exec_requests", "Requests answered, by method", ["method"],
                                registry=r)
        self.errors = Counter("trio_exec_request_errors",
                              "Requests answered with an error, by method and code",
                              ["method", "code"], registry=r)
        self.latency = Histogram("trio_exec_request_duration_seconds",
                                 "Seconds from reading a request to its reply, by method",
                                 ["method"], buckets=LATENCY_BUCKETS, registry=r)
        self.messages_too_big = Counter("trio_exec_messages_too_big",
                                        "Connections closed 1009 for a message over the limit",
                                        registry=r)
        self._per_method: dict[str, tuple[Counter, Histogram]] = {}
        self._output_inc = self.output_bytes.inc

    def watch(self, registry: SessionRegistry) -> None:
        """Read the session and process gauges from `registry` when scraped."""
        self.registry.register(_RegistryState(registry))

    def exposition(self) -> tuple[bytes, str]:
        """The `GET /metrics` body and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE

    # --- the daemon's own events -------------------------------------------------------------

    def connection_opened(self) -> None:
        self.connections.inc()
        self.connections_total.inc()

    def connection_closed(self) -> None:
        self.connections.dec()

    # --- SessionEvents / ProcessEvents -----------------------------------------------------

    def session_created(self) -> None:
        self.sessions_created.inc()

    def session_resumed(self) -> None:
        self.resumes.inc()

    def session_taken_over(self) -> None:
        self.takeovers.inc()

    def session_expired(self) -> None:
        self.expiries.inc()

    def process_started(self) -> None:
        self.processes_started.inc()

    def process_output(self, size: int) -> None:
        self._output_inc(size)

    def process_exited(self, kind: str) -> None:
        self.exits.labels(kind).inc()

    # --- ConnectionEvents ------------------------------------------------------------------

    def request_done(self, method: str, error_code: int | None, seconds: float) -> None:
        children = self._per_method.get(method)
        if children is None:
            label = method if method in METHODS else OTHER_METHOD
            children = (self.requests.labels(label), self.latency.labels(label))
            if label != OTHER_METHOD:
                self._per_method[method] = children
        count, latency = children
        count.inc()
        latency.observe(seconds)
        if error_code is not None:
            self.errors.labels(method if method in METHODS else OTHER_METHOD,
                               str(error_code)).inc()

    def message_too_big(self) -> None:
        self.messages_too_big.inc()
