"""The backstage: everything that waits on the world, on one asyncio loop beside the show.

    runner.py     Backstage: the loop's thread, start and stop, the tasks it runs
    assembly.py   every part built from the config and wired together, in dependency order
    scribe.py     the ledger's journal writes and image files, on threads of their own
    control.py    what the VJ's control page may read and do (the hub's ``Controls``)
    chores.py     periodic jobs: quiet-time garbage collection, queue positions, HUD, demo images
    process.py    the same Backstage in a process of its own, bridged to the show
    messages.py   what crosses that bridge, as frozen dataclasses
"""

from __future__ import annotations

from engine.backstage.runner import Backstage as Backstage
from engine.errors import BackstageError as BackstageError
