"""Run a bench script against a frozen copy of ``perdure/`` (used by ``python -m bench``).

    python bench/_snapshot_run.py SNAPSHOT_DIR SCRIPT [ARGS...]

Other people edit ``perdure/`` while a benchmark runs. ``python -m bench`` copies the package
once at the start, and every Perdure measurement of the run imports that copy. This script puts
the copy first on ``sys.path``. It also drops the editable-install finder, which would otherwise
still resolve ``perdure`` to the live tree.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def main() -> None:
    snapshot, script, *args = sys.argv[1:]
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not type(f).__module__.startswith("__editable__")
                        and not getattr(f, "__module__", "").startswith("__editable__")]
    sys.path.insert(0, snapshot)
    sys.path.insert(0, str(Path(script).resolve().parent))
    for name in [m for m in sys.modules if m == "perdure" or m.startswith("perdure.")]:
        del sys.modules[name]
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
