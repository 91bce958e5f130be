"""The HTML report opens in headless Chromium without console errors, and is not blank."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from swarm_runtime.report import RunReport, write_html_report

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
WIDTH, HEIGHT = 1400, 2000


def chromium() -> str:
    """The Chromium executable; skip (locally) or fail (in CI) when there is none."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if IN_CI:
        pytest.fail("CI=true but Chromium is not installed (apt-get install -y chromium)")
    pytest.skip("Chromium is not installed")


def screenshot(page: Path, png: Path, profile: Path) -> str:
    """Render ``page`` to ``png``; return Chromium's log (stderr)."""
    result = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            f"--window-size={WIDTH},{HEIGHT}",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr


def console_problems(log: str) -> list[str]:
    """Log lines where the page itself reported something (scripts, console, bad loads)."""
    return [
        line
        for line in log.splitlines()
        if "CONSOLE" in line or "Uncaught" in line or "net::ERR_" in line
    ]


def png_pixels(png: Path) -> tuple[int, int, bytes]:
    """Width, height and the decompressed image data of a PNG file."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        if kind == b"IDAT":
            chunks.append(data[at + 8 : at + 8 + length])
        at += 12 + length
    return width, height, zlib.decompress(b"".join(chunks))


def test_report_renders_in_chromium(realistic_report: RunReport, tmp_path: Path) -> None:
    """A realistic report screenshots to a full, non-blank image with no console errors."""
    page = write_html_report(realistic_report, tmp_path / "report.html")
    png = tmp_path / "report.png"
    log = screenshot(page, png, tmp_path / "profile")
    assert console_problems(log) == []
    width, height, pixels = png_pixels(png)
    assert (width, height) == (WIDTH, HEIGHT)
    assert png.stat().st_size > 50_000
    assert len(set(pixels[:: max(1, len(pixels) // 200_000)])) > 64  # real content, not a blank


def test_console_check_catches_a_broken_page(tmp_path: Path) -> None:
    """The console check does flag a page whose script throws (so the test above can fail)."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><script>missing();</script></body></html>")
    log = screenshot(page, tmp_path / "broken.png", tmp_path / "profile")
    assert any("Uncaught ReferenceError" in line for line in console_problems(log))
