"""Small file helpers shared by the parts (blocking: call them through ``asyncio.to_thread``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any, *, indent: int | None = 2) -> None:
    """``data`` as JSON at ``path``, whole or not at all (written beside it, then renamed)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=indent))
    os.replace(tmp, path)
