"""The crash app's workflows on an engine that encrypts every payload and offloads the large
ones to a blob directory beside the cluster's database (``PERDURE_CRASH_DIR/blobs``).

Started as ``python -m perdure worker tests.crash.app_payloads:ENGINE --db ...``.
"""

from __future__ import annotations

import os
from pathlib import Path

from perdure import DirectoryBlobs, Encrypted, Engine
from tests.crash.app import WORKFLOWS

__all__ = ["ENGINE", "KEY", "options"]

#: a fixed test key (a real deployment reads its keys from a secret store)
KEY = bytes(range(32))


def options(directory: Path) -> dict[str, object]:
    """The payload options every process of the cluster uses."""
    return {"codec": Encrypted(keys={"k1": KEY}, current="k1"),
            "blobs": DirectoryBlobs(directory / "blobs"), "offload_above": 16 * 1024}


ENGINE = Engine("sqlite:///unused.db", workflows=WORKFLOWS,
                **options(Path(os.environ.get("PERDURE_CRASH_DIR", "."))))  # type: ignore[arg-type]
