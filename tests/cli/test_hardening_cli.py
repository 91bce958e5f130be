"""The command line under hostile conditions: busy ports, passwords in URLs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import swarm_runtime as sr

from ..redis_server import private_redis
from .test_pipeline_cli import small_pipeline

PASSWORD = "s3cret-Pw-42"


def swarm(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "swarm_runtime", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_a_busy_metrics_port_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    """No 80-line exception group: the reason on one line, the usage exit code."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = swarm(
            "run",
            str(small_pipeline(tmp_path)),
            "--queue",
            "memory://",
            "--metrics-port",
            str(port),
        )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("error:")
    assert str(port) in errors[0]
    assert "Traceback" not in done.stderr
    assert "ExceptionGroup" not in done.stderr


@pytest.mark.redis
@pytest.mark.slow
def test_a_redis_password_is_never_shown_or_saved(tmp_path: Path) -> None:
    """run's first line, both reports, queue stats and peek and the worker's ready line
    all show the URL with ``***`` for the password, and everything still connects."""
    with private_redis(tmp_path, password=PASSWORD) as port:
        url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0?prefix=redact"
        pipeline = str(small_pipeline(tmp_path))
        shown = f"redis://:***@127.0.0.1:{port}/0"
        outputs = []
        for report in ("r.json", "r.html"):
            done = swarm(
                "run",
                pipeline,
                "--queue",
                url,
                "--new",
                "--report",
                str(tmp_path / report),
                "--artifacts",  # the pipeline's tables, on a redis:// queue
                str(tmp_path / "artifacts"),
            )
            assert done.returncode == 0, done.stderr
            assert shown in done.stdout
            text = (tmp_path / report).read_text()
            assert PASSWORD not in text
            assert shown in text
            outputs += [done.stdout, done.stderr]
        for command in ("stats", "peek"):
            done = swarm("queue", command, "--queue", url)
            assert done.returncode == 0, done.stderr
            assert shown in done.stdout
            outputs += [done.stdout, done.stderr]
        worker = subprocess.Popen(
            [sys.executable, "-m", "swarm_runtime", "worker", pipeline, "--queue", url],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert worker.stderr is not None
            ready = worker.stderr.readline()
            assert "ready" in ready
            assert shown in ready
            outputs.append(ready)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.communicate(timeout=30)
        assert not [out for out in outputs if PASSWORD in out]


@pytest.mark.redis
def test_the_password_can_come_from_the_environment(tmp_path: Path) -> None:
    """``REDIS_PASSWORD`` keeps the secret off the command line; without it, a clear error."""
    with private_redis(tmp_path, password=PASSWORD) as port:
        url = f"redis://127.0.0.1:{port}/0?prefix=envpw"
        denied = swarm("queue", "stats", "--queue", url, env={"REDIS_PASSWORD": ""})
        assert denied.returncode == 3
        assert denied.stderr.startswith("error:")
        assert len(denied.stderr.strip().splitlines()) == 1
        allowed = swarm("queue", "stats", "--queue", url, env={"REDIS_PASSWORD": PASSWORD})
        assert allowed.returncode == 0, allowed.stderr


def test_a_bad_redis_url_does_not_echo_its_password() -> None:
    """Errors about a URL name it without the secret."""
    done = swarm("queue", "stats", "--queue", f"redis://:{PASSWORD}@127.0.0.1:notaport/0")
    assert done.returncode == 2
    assert PASSWORD not in done.stderr
    assert "redis://:***@127.0.0.1:notaport/0" in done.stderr


@pytest.mark.redis
async def test_rediss_connects_over_tls(tmp_path: Path) -> None:
    """``rediss://`` speaks TLS (checking the server's certificate against ``ssl_ca_certs``)."""
    with private_redis(tmp_path, tls=True) as port:
        cert = tmp_path / "cert.pem"
        url = f"rediss://127.0.0.1:{port}/0?prefix=tls&ssl_ca_certs={cert}"
        async with sr.MessageQueue.open(url) as queue:
            await queue.publish("t", {"over": "tls"})
            [message] = await queue.subscribe("t")
            assert message.payload == {"over": "tls"}
            await queue.acknowledge(message.id)
        plain = swarm("queue", "stats", "--queue", f"redis://127.0.0.1:{port}/0")
        assert plain.returncode == 3  # a plain connection to a TLS port fails cleanly
        assert len(plain.stderr.strip().splitlines()) == 1
