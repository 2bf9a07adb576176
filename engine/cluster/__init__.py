"""Past one machine: the intake, show and generate roles, sharing one show's crowd through Redis.

    phones ─▶ intake ×N ─XADD─▶ prompts ─XREADGROUP─▶ show (ledger, fair queue, journal) ─▶ screen
                  ▲                                     │ XADD jobs              ▲ XREADGROUP results
                  └── PUBLISH status, HSET history ─────┤                        │
                                                        ▼                        │
                                      jobs ─XREADGROUP─▶ generate ×M ─XADD──▶ results

- ``keys.py``: every Redis key of a show, in one place.
- ``wire.py``: what goes into the streams and channels, encoded and checked (sans-I/O).
- ``link.py``: connecting (with backoff), the start-up check, consumer groups, stopping tasks.
- ``gate.py``: the intakes' shared limits (token buckets, duplicates, bans) as one Lua script.
- ``intake.py``: the ``intake`` role: the phones' server, prompts to the stream, statuses from the channel.
- ``images.py``: images in Redis under a size cap, served by every intake.
- ``show_link.py``: the show's prompt reader and its writer of statuses, history, feeds, bans and images.
- ``jobs.py``: ``RemoteGenerator``, the show's generator whose images the workers make.
- ``worker.py``: the ``generate`` role.
- ``show_role.py``: the show's backstage joined to all of the above.
- ``roles_cli.py``: ``python -m engine intake|generate`` (``show`` is ``engine/cli.py``'s).

Design, runbook and capacity: docs/cluster.md.

The sans-I/O logic (protocol, audience, moderation, ledger) is the same as in the one-process show: the
show role owns the fair queue and the journal exactly as ``python -m engine`` does; the intakes only carry
prompts in and statuses out, and the generate workers only turn jobs into images.
"""
