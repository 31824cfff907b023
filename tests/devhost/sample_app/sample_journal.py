"""Each invocation of the sample app appends one JSON line to SAMPLE_JOURNAL_DIR/<function>.jsonl,
so the tests see what a function received the way a user would: from outside the host."""

import json
import os
import threading
from pathlib import Path
from typing import Any

_lock = threading.Lock()


def record(function: str, **fields: Any) -> None:
    path = Path(os.environ["SAMPLE_JOURNAL_DIR"]) / f"{function}.jsonl"
    with _lock, path.open("a", encoding="utf-8") as journal:
        journal.write(json.dumps(fields, default=str) + "\n")
