"""How a benchmark worker process is called and answers, in whichever venv it runs.

The driver starts `python <worker>.py <task> '<json kwargs>'`; the worker runs that task once and
prints its result as one JSON object on the last line of stdout. Standard library only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

Task = Callable[..., dict[str, Any]]


def serve(tasks: dict[str, Task]) -> None:
    task_name, raw_kwargs = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "{}"
    if task_name not in tasks:
        sys.exit(f"unknown task {task_name!r}; known: {', '.join(sorted(tasks))}")
    result = tasks[task_name](**json.loads(raw_kwargs))
    sys.stdout.flush()
    print(json.dumps(result))
