"""The ``redis://HOST:PORT/DB`` queue: Redis Streams shared by any number of processes.

Needs the ``redis`` extra (``pip install 'swarm-runtime[redis]'``) and Redis 6.2 or newer.
Every state change is one Lua script (atomic), and the hot paths are batched: concurrent
``publish`` calls share one script call (group commit), so do concurrent ``acknowledge``
calls, and ``subscribe`` leases a whole batch in one call.

Key layout (``P`` is the ``prefix`` option, default ``swarm``; everything the queue owns is
under ``P:q:``, leaving ``P:wf:``, ``P:handoff:``, ``P:state:`` ... to the runtime's shared
state)::

    P:q:topics            SET     topics that hold anything
    P:q:m:ID              HASH    one message: t topic, p priority, b envelope (JSON),
                                  e stream entry id ('' while not in a stream), s state
                                  (r ready, q ready again, l leased, d delayed),
                                  a attempts, x last error, k its own max_attempts
    P:q:u:KEY             STRING  a dedup key: "EXPIRES|ID", PX = the dedup window
    P:q:t:T:s:PRIO        STREAM  ready and in-flight messages of priority PRIO (field i =
                                  message id); consumer group "swarm", one consumer per
                                  queue instance
    P:q:t:T:lv            ZSET    the priority levels that have a stream
    P:q:t:T:ls            ZSET    leases: message id -> lease deadline
    P:q:t:T:rq            ZSET    ready again (nacked, released, lease expired) while the
                                  entry stays pending: score -PRIO, member "ENTRY|ID"
    P:q:t:T:dl            ZSET    delayed: message id -> due time
    P:q:t:T:dlq           STREAM  dead letters: i id, b envelope, a attempts, x last error
    P:q:t:T:w, :bell      STRING, LIST  a subscriber is waiting; wake-up tokens

Deliveries. ``subscribe`` runs one script: due delayed messages and expired leases are
promoted first, then it takes messages priority level by priority level, highest first:
within a level, messages that are ready *again* come first (XCLAIMed to this consumer, in
their original publish order) and then new ones (XREADGROUP). Each taken message gets
``attempts + 1`` and a lease deadline in ``ls``. An ack is XACK + XDEL + DEL of the
message hash; a stream that becomes empty is deleted with its group, so Redis memory
follows the backlog, not the throughput.

Leases: a sorted set of deadlines plus XCLAIM, not XAUTOCLAIM. XAUTOCLAIM judges expiry by
the PEL idle time, which is one global ``min-idle-time`` measured by Redis's clock; the
queue needs a lease length per ``subscribe`` call, ``extend`` heartbeats that push one
deadline out, and the queue's injectable clock (tests move time by hand). Expired leases
are reclaimed inside every ``subscribe``, ``stats`` and ``peek`` (no start-up code and no
background task involved), and a waiting subscriber wakes by itself when the next delayed
message or lease of its topic falls due, so redelivery happens while consumers wait. A
message whose lease expires on its last attempt goes to the dead-letter stream with
``last_error`` saying so; ``nack`` past ``max_attempts`` does the same with its error.

Waiting. A ``subscribe`` with a timeout that finds nothing sets the topic's waiter flag
(in the same script, so no wake-up can be lost) and blocks in BLPOP on the topic's bell
for at most ``poll_interval``; every script that makes messages ready pushes tokens on the
bell while the flag lives. One token wakes one subscriber in any process. ``interrupt``
and ``close`` cancel local waits, so ``supports_interrupt`` is true. (Why not XREADGROUP
BLOCK: a blocking read leases outside the script, so a crash or cancellation between the
read and the lease bookkeeping would strand entries in the PEL; it also cannot watch
several priority streams that come and go, nor delayed messages falling due.)

What differs from the memory and file backends:

* A delayed message joins its priority level when it falls due, behind messages published
  while it waited (memory and file keep its publish position). Messages that are ready
  again keep their position.
* Priorities must lie within +/-2**53 (sorted-set scores are doubles).
* A dedup key is remembered for the window by the queue's clock, and by Redis's expiry
  (PX) for clean-up; keys are shared by every process on the prefix.
* The default ``max_attempts`` that decides a dead letter is that of the process that
  decides (nacks it, or reaps its lease); a message's own ``max_attempts`` always wins.
* After a connection loss a call is retried (``retries``, with backoff and a warning):
  a retried ``subscribe`` whose first reply was lost leaves that batch leased to nobody
  (redelivered after the lease, attempts + 1); a retried ``acknowledge`` may report
  False for a message its first try did settle. Nothing is lost either way.
* Everything lives in one Redis database; for Redis Cluster, put the prefix in braces
  (``prefix="{swarm}"``) so all keys hash to one slot.
"""

from ._queue import RedisQueue

__all__ = ["RedisQueue"]
