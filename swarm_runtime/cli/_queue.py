"""``queue stats|peek|dlq|replay|purge``: look into a queue and repair it from the shell.

Inspection (``stats``, ``peek``, ``dlq``) opens a ``file://`` queue read-only, so it works
while a runtime owns the queue. ``replay`` and ``purge`` change the queue and need to own
it: if another process does, they stop with exit code 3 and name that process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import click
import orjson
from rich.console import Console
from rich.table import Table

from .. import _loop
from .._redact import redact
from ..backends import backend_class
from ..message import Message, validate_topic
from ..queue.base import MessageQueue
from ._exit import exit_on_error, usage_error

__all__ = ["register"]

T = TypeVar("T")

DEFAULT_QUEUE = "file://queue"
_PREVIEW = 60

queue_option = click.option(
    "--queue",
    "queue_url",
    envvar="SWARM_QUEUE",
    default=DEFAULT_QUEUE,
    show_default=True,
    help="Queue URL: file://DIR, redis://HOST:PORT/DB (or set SWARM_QUEUE).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def register(cli: click.Group) -> None:
    cli.add_command(queue_group)


@click.group("queue")
def queue_group() -> None:
    """Inspect and repair a message queue (stats, peek, dlq, replay, purge)."""


# ---------------------------------------------------------------------------- plumbing


def _with_queue(url: str, *, write: bool, job: Callable[[MessageQueue], Awaitable[T]]) -> T:
    """Open the queue (read-only for inspection of a file queue), run ``job``, close it."""

    async def main() -> T:
        options = {} if write else dict(backend_class(url).inspection_options)
        queue = await MessageQueue.open(url, **options)
        try:
            return await job(queue)
        finally:
            with anyio.CancelScope(shield=True):
                await queue.close()

    with exit_on_error():
        return _loop.run(main)


def _check_topic(topic: str | None) -> None:
    if topic is not None:
        try:
            validate_topic(topic)
        except ValueError as exc:
            usage_error(str(exc))


def _preview(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"


def _age(created_at: float) -> str:
    seconds = max(0.0, time.time() - created_at)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.1f}s"


def _console() -> Console:
    return Console(soft_wrap=False, width=None if os.isatty(1) else 160)


def _message_dict(m: Message) -> dict[str, Any]:
    return m.to_dict()


# ---------------------------------------------------------------------------- stats


@queue_group.command("stats")
@queue_option
@json_option
@click.argument("topic", required=False)
def stats_command(queue_url: str, as_json: bool, topic: str | None) -> None:
    """Message counts per topic (ready, delayed, leased, dead) and, for a file queue, its
    directory, log and lock holder."""
    _check_topic(topic)

    async def job(queue: MessageQueue) -> tuple[list[Any], dict[str, Any] | None]:
        names = [topic] if topic else await queue.topics()
        rows = [await queue.stats(name) for name in names]
        info = getattr(queue, "info", None)
        return rows, (info().as_dict() if callable(info) else None)

    rows, info = _with_queue(queue_url, write=False, job=job)
    if as_json:
        out = {
            "queue": redact(queue_url),
            "topics": {
                r.topic: {
                    "ready": r.ready,
                    "delayed": r.delayed,
                    "leased": r.leased,
                    "dead": r.dead,
                    "depth": r.depth,
                }
                for r in rows
            },
        }
        if info is not None:
            recovery = info.pop("recovery", None)
            info["problems"] = list(recovery.problems) if recovery is not None else []
            out["file"] = info
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    console = _console()
    table = Table(title=f"queue {redact(queue_url)}", title_justify="left")
    for column in ("topic", "ready", "delayed", "leased", "dead", "depth"):
        table.add_column(column, justify="left" if column == "topic" else "right")
    for r in rows:
        dead = f"[bold red]{r.dead}[/]" if r.dead else "0"
        table.add_row(r.topic, str(r.ready), str(r.delayed), str(r.leased), dead, str(r.depth))
    if not rows:
        table.add_row("[dim](no messages)[/]", "", "", "", "", "")
    console.print(table)
    if info is not None:
        _print_file_info(console, info)


def _print_file_info(console: Console, info: dict[str, Any]) -> None:
    holder = info.get("lock_holder")
    owner = f"process {holder}" if holder and holder > 0 else "nobody (not running)"
    if holder == -1:
        owner = "another process"
    console.print(
        f"directory [bold]{info['directory']}[/]  format v{info['format']}  "
        f"segments {info['segments']}  log {_size(info['log_bytes'])}  "
        f"index {_size(info['index_bytes'])}  owner: {owner}"
    )
    recovery = info.get("recovery")
    if recovery is not None:
        for problem in recovery.problems:
            console.print(f"[yellow]warning:[/] {problem}")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


# ---------------------------------------------------------------------------- peek / dlq


def _message_table(title: str, messages: list[Message], *, dead: bool) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("id", no_wrap=True)
    table.add_column("topic")
    table.add_column("prio", justify="right")
    table.add_column("attempts", justify="right")
    table.add_column("age", justify="right")
    if dead:
        table.add_column("last error", style="red", max_width=50)
    table.add_column("payload", overflow="ellipsis", max_width=_PREVIEW)
    for m in messages:
        row = [m.id, m.topic, str(m.priority), str(m.attempts), _age(m.created_at)]
        if dead:
            row.append(m.last_error or "")
        row.append(_preview(m.payload))
        table.add_row(*row)
    if not messages:
        table.add_row("[dim](none)[/]", *[""] * (6 if dead else 5))
    return table


def _listing(queue_url: str, topic: str | None, limit: int, as_json: bool, *, dead: bool) -> None:
    _check_topic(topic)
    if limit < 1:
        usage_error(f"--limit must be >= 1, got {limit}")

    async def job(queue: MessageQueue) -> list[Message]:
        names = [topic] if topic else await queue.topics()
        out: list[Message] = []
        for name in names:
            if dead:
                out.extend(await queue.dead_letters(name, limit))
            else:
                out.extend(await queue.peek(name, limit))
        return out

    messages = _with_queue(queue_url, write=False, job=job)
    if as_json:
        data = [_message_dict(m) for m in messages]
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    what = "dead letters" if dead else "next ready messages"
    title = f"{what} of {topic or 'every topic'} ({redact(queue_url)})"
    _console().print(_message_table(title, messages, dead=dead))


@queue_group.command("peek")
@queue_option
@json_option
@click.option("--limit", "-n", default=10, show_default=True, help="Messages per topic.")
@click.argument("topic", required=False)
def peek_command(queue_url: str, as_json: bool, limit: int, topic: str | None) -> None:
    """The next ready messages, in delivery order, without leasing them."""
    _listing(queue_url, topic, limit, as_json, dead=False)


@queue_group.command("dlq")
@queue_option
@json_option
@click.option("--limit", "-n", default=50, show_default=True, help="Dead letters per topic.")
@click.argument("topic", required=False)
def dlq_command(queue_url: str, as_json: bool, limit: int, topic: str | None) -> None:
    """Dead letters, oldest first, with the error that killed each one."""
    _listing(queue_url, topic, limit, as_json, dead=True)


# ---------------------------------------------------------------------------- replay / purge


@queue_group.command("replay")
@queue_option
@click.option("--id", "ids", multiple=True, help="Replay only this dead letter (repeatable).")
@click.argument("topic", required=False)
def replay_command(queue_url: str, ids: tuple[str, ...], topic: str | None) -> None:
    """Move dead letters back to ready (attempts reset): all of TOPIC's, or every topic's."""
    _check_topic(topic)
    if ids and not topic:
        usage_error("--id needs a TOPIC")

    async def job(queue: MessageQueue) -> dict[str, int]:
        names = [topic] if topic else await queue.topics()
        return {name: await queue.replay(name, list(ids) or None) for name in names}

    counts = _with_queue(queue_url, write=True, job=job)
    total = sum(counts.values())
    for name, count in counts.items():
        if count:
            click.echo(f"{name}: {count} dead letter(s) replayed")
    click.echo(f"replayed {total} message(s)")
    if ids and total < len(ids):
        click.echo(f"warning: {len(ids) - total} id(s) were not dead letters of {topic}", err=True)


@queue_group.command("purge")
@queue_option
@click.option("--dead", is_flag=True, help="Purge the dead-letter queue instead.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.argument("topic", required=False)
def purge_command(queue_url: str, dead: bool, yes: bool, topic: str | None) -> None:
    """Delete TOPIC's ready and delayed messages (leased ones are left alone), or with
    --dead its dead letters; without TOPIC, every topic's. Asks first unless --yes."""
    _check_topic(topic)
    what = "dead letters" if dead else "ready and delayed messages"
    where = f"topic {topic!r}" if topic else "EVERY topic"
    if not yes:
        if not os.isatty(0):
            usage_error(f"refusing to purge the {what} of {where} without --yes")
        click.confirm(f"Delete all {what} of {where} in {redact(queue_url)}?", abort=True)

    async def job(queue: MessageQueue) -> dict[str, int]:
        names = [topic] if topic else await queue.topics()
        counts = {}
        for name in names:
            if dead:
                counts[name] = await queue.purge_dead_letters(name)
            else:
                counts[name] = await queue.purge(name)
        return counts

    counts = _with_queue(queue_url, write=True, job=job)
    for name, count in counts.items():
        click.echo(f"purged {count} {what} of {name}")
    if not counts:
        click.echo("nothing to purge")
