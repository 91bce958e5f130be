"""The ``redis://HOST:PORT/DB`` queue: Redis Streams shared by any number of processes.

Needs the ``redis`` extra (``pip install 'swarm-runtime[redis]'``) and Redis 6.2 or newer.
Every state change is one Lua script, so it is atomic; the hot paths are batched: concurrent
``publish`` calls share one script call (group commit), so do concurrent ``acknowledge``
calls, and ``subscribe`` leases a whole batch in one call. There is no background task:
whoever calls drives the work, so a queue may be opened and closed in different tasks.

Key layout (``P`` is the ``prefix`` option, default ``swarm``). The queue owns ``P:q:``;
the runtime's shared state can live beside it (``P:wf:``, ``P:handoff:``, ``P:state:``)::

    P:q:topics          SET     topics that hold anything
    P:q:ix              HASH    message id -> "ENTRY|PRIORITY|TOPIC" (ENTRY is the stream
                                entry id, '' for a delayed message not yet queued)
    P:q:m:ID            HASH    only for messages that need it: a attempts (after a
                                redelivery or release), x last error (after a nack); for a
                                delayed message its envelope b, max_attempts k, error x
    P:q:u:KEY           STRING  a dedup key: "EXPIRES|ID", PX = the dedup window
    P:q:t:T:s:PRIO      STREAM  the messages of priority PRIO: i id, b envelope (JSON),
                                k own max_attempts, x last error (when set); consumer
                                group "swarm", one consumer per queue instance
    P:q:t:T:lv          ZSET    the priority levels that have a stream
    P:q:t:T:fr          HASH    priority -> entries not delivered yet (kept by the scripts:
                                the group's lag is unknown after deletions)
    P:q:t:T:ls          ZSET    leases: message id -> lease deadline
    P:q:t:T:rq          ZSET    ready again (nacked, released, lease expired) while the entry
                                stays pending in the group: score -PRIO, member
                                "SORTABLE-ENTRY-ID|ID" (so publish order within a level)
    P:q:t:T:dl          ZSET    delayed: message id -> due time
    P:q:t:T:dlq         STREAM  dead letters: i id, b envelope, a attempts, x last error,
                                p priority, k own max_attempts
    P:q:t:T:w, :bell    STRING, LIST  a subscriber waits (PX); wake-up tokens

Deliveries. ``subscribe`` is one script: due delayed messages and expired leases are
promoted first; then it takes messages level by level, highest priority first: within a
level, the messages that are ready *again* come first (XCLAIMed to this consumer, in publish
order), then new ones (XREADGROUP). A first delivery costs no per-message key access beyond
the stream read and one ZADD of all the batch's leases. An ack is HDEL from the index, XACK,
and trimming: everything older than the oldest entry still pending is settled, so one
``XTRIM MINID`` removes it; acked entries behind a straggler are XDELed one by one only once
more than 4,096 pile up. A stream that empties is deleted with its group, and the topic's
keys go with its last message, so Redis memory follows the backlog, not the throughput.

Leases: a sorted set of deadlines plus XCLAIM, not XAUTOCLAIM. XAUTOCLAIM judges expiry by a
single ``min-idle-time`` measured on Redis's clock; the queue needs a lease length per
``subscribe`` call, ``extend`` heartbeats that move one deadline, and the queue's injectable
clock (tests move time by hand). Expired leases are reclaimed inside every ``subscribe``,
``stats`` and ``peek`` (no start-up code, no background task), and a waiting subscriber
wakes by itself when the next delayed message or lease of its topic falls due (a lease
taken while it already waits is noticed within ``poll_interval``), so redelivery happens
while consumers wait. A message whose lease expires on its last attempt
goes to the dead-letter stream saying so; ``nack`` past ``max_attempts`` (or with
``dead_letter=True``) does the same with its error. ``nack_many`` is one script call for
the whole batch (chunks of 1,000 ids in one MULTI/EXEC), like ``acknowledge_many``.

Waiting. A ``subscribe`` with a timeout that finds nothing sets the topic's waiter flag in
the same script (so no wake-up can be lost) and blocks in BLPOP on the topic's bell for at
most ``poll_interval``; scripts that make messages ready (or delayed) push tokens on the
bell while the flag lives, one token waking one subscriber in any process. ``interrupt``
and ``close`` cancel local waits, so ``supports_interrupt`` is true. XREADGROUP BLOCK is
not used: it would lease outside the script, so a crash or a cancellation between the read
and the lease bookkeeping would strand entries in the group; nor can it watch priority
streams that come and go, or delayed messages falling due. Each waiting ``subscribe``
holds one pooled connection while it waits.

Acks. An ack of a message this queue delivered, with more than a second of lease left,
joins an ack batch that another caller is already waiting to send and returns True at once
(its result is known here: leased by us, not settled by us). Such an ack is lost only if
the process dies in the next round trip or Redis stays unreachable, and then the message
is delivered again after its lease: at-least-once allows it, and consumers are not held up
one round trip per ack.

What differs from the memory and file backends:

* Durability is Redis's: a publish has returned once Redis has it in memory; configure AOF
  (``appendonly yes``, ``appendfsync everysec`` or ``always``) for it to survive a Redis
  crash.
* A delayed message joins its priority level when it falls due, behind messages published
  while it waited (memory and file keep its publish position). Messages that are ready
  again keep their position.
* Priorities must lie within +/-2**53 (sorted-set scores are doubles).
* A dedup key is remembered for the window by the queue's clock, and by Redis's expiry
  (PX) for clean-up; keys are shared by every process on the prefix.
* The default ``max_attempts`` that decides a dead letter is that of the process that
  decides (nacks it, or finds its lease expired); a message's own ``max_attempts`` wins.
* One ``subscribe`` call leases at most 1,000 messages.
* After a connection loss a call is retried (``retries``, with backoff and a warning):
  a retried ``subscribe`` whose first reply was lost leaves that batch leased to nobody
  (delivered again after the lease, attempts + 1); a retried ``acknowledge`` may report
  False for a message its first try did settle. Nothing is lost either way.
* Everything lives in one Redis database; for Redis Cluster, put the prefix in braces
  (``prefix="{swarm}"``) so that every key hashes to one slot.
"""

from ._queue import RedisQueue

__all__ = ["RedisQueue"]
