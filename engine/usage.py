"""One line and exit code 2 for a bad flag, in every command of ``python -m engine``.

argparse prints its usage and calls ``sys.exit`` itself; the commands want to say one line naming the
flag and return their own exit code, so the parser raises instead.
"""

from __future__ import annotations

import argparse
from typing import Any

EXIT_USAGE = 2


class UsageError(Exception):
    """A bad flag or argument: the command prints it as one line and exits with ``EXIT_USAGE``."""


class StrictParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise UsageError(message)
