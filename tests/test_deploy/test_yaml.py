from __future__ import annotations

import subprocess

from tests.test_deploy.conftest import ROOT, tool


def test_yamllint_passes_on_every_yaml_file() -> None:
    result = subprocess.run(
        [tool("yamllint"), "--strict", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
