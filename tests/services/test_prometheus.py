"""PrometheusExporter: names, values parsed back, the HTTP endpoint, and promtool's verdict."""

from __future__ import annotations

import os
import shutil
import subprocess

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

from swarm_runtime.clock import ManualClock
from swarm_runtime.errors import ConfigError
from swarm_runtime.services import (
    BreakerConfig,
    ErrorHandler,
    LoadBalancer,
    MetricsCollector,
    MonitoringSystem,
    PrometheusExporter,
)

from ._events import event, run_task

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def scrape(port: int, path: str = "/metrics", method: str = "GET") -> tuple[str, str]:
    """One HTTP/1.1 request to 127.0.0.1:port; returns (head, body)."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        data = b""
        try:
            while True:
                data += await stream.receive()
        except anyio.EndOfStream:
            pass
    head, _, body = data.decode().partition("\r\n\r\n")
    return head, body


def busy_exporter(clock: ManualClock) -> PrometheusExporter:
    """An exporter wired to every service, after some successes, failures and a crash."""
    metrics = MetricsCollector(clock=clock)
    monitoring = MonitoringSystem(clock=clock, measure_loop_lag=False)
    errors = ErrorHandler(breaker=BreakerConfig(failure_threshold=2), clock=clock)
    balancer = LoadBalancer(gate=errors)
    balancer.register_agent("summarize", capacity=2, replicas=2)
    exporter = PrometheusExporter(
        port=0, metrics=metrics, monitoring=monitoring, errors=errors, balancer=balancer
    )
    listeners = [metrics, monitoring, errors, balancer, exporter]
    for duration in (0.003, 0.2, 0.7):
        run_task(listeners, "summarize", "ok", duration=duration)
    for attempt in (1, 2):
        run_task(
            listeners,
            "flaky",
            "error",
            error=RuntimeError("x"),
            attempts=attempt,
            dead=attempt == 2,
        )
    for listener in listeners:  # a task still running on a replica that then crashes
        listener.on_task_started(event("crashy", "started", message_id="c1"))
    monitoring.record_metric("summarize", "queue_size", 170)
    return exporter


def test_task_metrics_follow_prometheus_conventions(clock: ManualClock) -> None:
    """Counters end in _total, durations are a seconds histogram, values are right."""
    text = busy_exporter(clock).render()[0].decode()
    got = samples(text)
    assert got[("swarm_messages_total", (("agent", "summarize"), ("outcome", "ok")))] == 3
    assert got[("swarm_messages_total", (("agent", "flaky"), ("outcome", "error")))] == 2
    assert got[("swarm_task_duration_seconds_count", (("agent", "summarize"),))] == 3
    assert got[("swarm_task_duration_seconds_sum", (("agent", "summarize"),))] == pytest.approx(
        0.903
    )
    bucket = ("swarm_task_duration_seconds_bucket", (("agent", "summarize"), ("le", "0.25")))
    assert got[bucket] == 2
    assert got[("swarm_tasks_in_flight", (("agent", "crashy"),))] == 1
    assert got[("swarm_task_retries_total", (("agent", "flaky"),))] == 1
    assert got[("swarm_dead_letters_total", (("agent", "flaky"),))] == 1


def test_services_state_is_exported_at_scrape_time(clock: ManualClock) -> None:
    """Circuit states, alerts, replica load and collector metrics appear in the output."""
    got = samples(busy_exporter(clock).render()[0].decode())
    assert got[("swarm_circuit_state", (("agent", "flaky"), ("state", "open")))] == 1
    assert got[("swarm_circuit_state", (("agent", "flaky"), ("state", "closed")))] == 0
    assert got[("swarm_errors_total", (("agent", "flaky"), ("kind", "task_failure")))] == 2
    alert = (
        "swarm_alerts_active",
        (("agent", "summarize"), ("metric", "queue_size"), ("severity", "high")),
    )
    assert got[alert] == 1
    assert got[("swarm_replica_load_ratio", (("agent", "summarize"), ("replica", "1")))] == 0
    assert (
        got[("swarm_agent_events_total", (("agent", "summarize"), ("metric", "messages_ok")))] == 3
    )
    p99 = (
        "swarm_agent_metric_window",
        (("agent", "summarize"), ("metric", "task_duration_seconds"), ("stat", "max")),
    )
    assert got[p99] == 0.7


def test_openmetrics_is_negotiated() -> None:
    """An OpenMetrics Accept header gets the OpenMetrics format."""
    exporter = PrometheusExporter()
    body, content_type = exporter.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


async def test_http_endpoint_serves_metrics_and_stops_on_cancel(clock: ManualClock) -> None:
    """/metrics answers on 127.0.0.1 (prometheus_client's server); POST is refused;
    cancelling the task stops the server and frees the port."""
    exporter = busy_exporter(clock)
    assert exporter.host == "127.0.0.1"
    async with anyio.create_task_group() as group:
        port = await group.start(exporter.run)
        assert port == exporter.port != 0
        head, body = await scrape(port)
        assert head.startswith("HTTP/1.0 200 OK")
        assert "Content-Type: text/plain" in head
        assert (
            samples(body)[("swarm_messages_total", (("agent", "summarize"), ("outcome", "ok")))]
            == 3
        )
        head, _ = await scrape(port, method="POST")
        assert head.startswith("HTTP/1.0 405")
        group.cancel_scope.cancel()
    with pytest.raises(OSError):
        await anyio.connect_tcp("127.0.0.1", port)
    async with anyio.create_task_group() as group:  # the port was freed: it can be bound again
        exporter.port = port
        assert await group.start(exporter.run) == port
        group.cancel_scope.cancel()


async def test_the_registry_is_the_exporters_own() -> None:
    """Each exporter has its own CollectorRegistry; nothing goes to the global one."""
    from prometheus_client import REGISTRY

    before = set(REGISTRY._collector_to_names)
    first, second = PrometheusExporter(port=0), PrometheusExporter(port=0)
    assert first.registry is not second.registry is not REGISTRY
    assert set(REGISTRY._collector_to_names) == before


async def test_a_scrape_from_the_server_thread_is_built_on_the_event_loop(
    clock: ManualClock,
) -> None:
    """Families are built on the loop's thread even though the server answers in its own."""
    import threading

    exporter = busy_exporter(clock)
    built_on: list[int] = []
    families = exporter.families

    def spy() -> list:  # type: ignore[type-arg]
        built_on.append(threading.get_ident())
        return families()

    exporter.families = spy  # type: ignore[method-assign]
    async with anyio.create_task_group() as group:
        port = await group.start(exporter.run)
        await scrape(port)
        group.cancel_scope.cancel()
    assert built_on == [threading.get_ident()]


async def test_port_in_use_is_a_clear_error() -> None:
    """A second exporter on a taken port fails with ConfigError naming --metrics-port."""
    first = PrometheusExporter(port=0)
    async with anyio.create_task_group() as group:
        port = await group.start(first.run)
        with pytest.raises(ConfigError, match="--metrics-port"):
            await PrometheusExporter(port=port).run()
        group.cancel_scope.cancel()
    with pytest.raises(ConfigError, match="65535"):
        PrometheusExporter(port=70000)


async def test_promtool_accepts_the_scraped_output(clock: ManualClock) -> None:
    """promtool check metrics finds no problem in what /metrics serves."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if IN_CI:
            pytest.fail("CI=true but promtool is not installed (apt-get install prometheus)")
        pytest.skip("promtool not installed (Debian package 'prometheus')")
    exporter = busy_exporter(clock)
    async with anyio.create_task_group() as group:
        port = await group.start(exporter.run)
        _, body = await scrape(port)
        group.cancel_scope.cancel()
    result = await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [promtool, "check", "metrics"], input=body, capture_output=True, text=True, check=False
        )
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == result.stderr.strip() == ""
