"""What every `python -m tf_gadn.X` command shares: a user's mistake (a missing or foreign run, a damaged checkpoint,
a file in the way, a bad value) ends as one `error: ...` line on stderr and exit status 1, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from tf_gadn.training.checkpoints import CheckpointError

USER_ERRORS = (CheckpointError, FileNotFoundError, FileExistsError, ValueError)


def explained(action: Callable[[], Any], *more: type[BaseException]) -> tuple[int, Any]:
    """(0, action()), or (1, None) after printing the error when it raises one of USER_ERRORS or `more`."""
    try:
        return 0, action()
    except (*USER_ERRORS, *more) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1, None
