"""``python -m normgrad.distributed.worker MODULE:FUNCTION [JSON]``: one rank's work.

What ``launch.run`` starts on every rank for a job that is not a CLI command (the
sync-bn experiment's arms): it imports FUNCTION from MODULE, calls it with the JSON
object's keys as keyword arguments, and runs it under ``faults.guard``, so a failure on
any rank ends every rank with that rank's error shown.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Sequence

from normgrad.distributed import faults


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not 1 <= len(args) <= 2 or ":" not in args[0]:
        print(
            "usage: python -m normgrad.distributed.worker MODULE:FUNCTION [JSON]", file=sys.stderr
        )
        return 2
    module, _, name = args[0].partition(":")
    kwargs = json.loads(args[1]) if len(args) == 2 else {}

    def work() -> int:
        fn = getattr(importlib.import_module(module), name)
        return int(fn(**kwargs) or 0)

    return faults.guard(work, command=f"worker {args[0]}")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
