"""Write deploy/requirements.lock: the exact versions the image installs.

    python deploy/lock.py        # resolves against the package index; no install

Re-run it when pyproject.toml's dependencies change (a test checks the lock still
satisfies them). The image installs the lock, then the project with ``--no-deps``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "deploy" / "requirements.lock"
EXTRAS = "rocksdb"


def resolve() -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--dry-run",
                "--ignore-installed",
                "--report",
                str(report),
                f".[{EXTRAS}]",
            ],
            cwd=ROOT,
            check=True,
        )
        installs = json.loads(report.read_text())["install"]
    pins = {
        (item["metadata"]["name"].lower(), item["metadata"]["version"])
        for item in installs
        if item["metadata"]["name"] != "crm-scorer"
    }
    return sorted(pins)


def main() -> None:
    header = (
        f"# The image's dependencies, resolved for Python {sys.version_info.major}."
        f"{sys.version_info.minor} with extras [{EXTRAS}].\n"
        "# Made by `python deploy/lock.py`; do not edit by hand.\n"
    )
    LOCK.write_text(header + "".join(f"{name}=={version}\n" for name, version in resolve()))
    print(f"wrote {LOCK.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
