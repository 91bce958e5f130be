"""A private ``redis-server`` on a free port, for tests that need a password or a stop."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["free_port", "private_redis"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def private_redis(
    directory: Path, *, password: str | None = None, tls: bool = False
) -> Iterator[int]:
    """Start ``redis-server`` on 127.0.0.1 (no persistence); yields its port, then stops it.

    ``tls``: the port speaks TLS only, with a self-signed certificate for 127.0.0.1 written to
    ``directory / "cert.pem"`` (made with the ``openssl`` command). Skips outside CI when
    redis-server is not installed; with ``CI=true`` it must be.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed (.ci/run installs it)")
        pytest.skip("redis-server is not installed")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    args += ["no", "--dir", str(directory), "--logfile", str(directory / "redis.log")]
    if password is not None:
        args += ["--requirepass", password]
    if tls:
        cert, key = directory / "cert.pem", directory / "key.pem"
        request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        request += ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
        request += ["-addext", "subjectAltName=IP:127.0.0.1"]
        subprocess.run(request, check=True, capture_output=True)
        args[1:3] = ["--port", "0", "--tls-port", str(port)]
        args += ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
        args += ["--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
