"""The Dockerfile lints clean, installs exactly the lock, and the lock satisfies the
project's declared dependencies (no Docker engine here: what can be checked, is)."""

from __future__ import annotations

import re
import subprocess
import tomllib

from packaging.requirements import Requirement

from tests.test_deploy.conftest import DEPLOY, ROOT, tool


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "info", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def pins() -> dict[str, str]:
    lines = (DEPLOY / "requirements.lock").read_text().splitlines()
    pinned = [line.split("==") for line in lines if line and not line.startswith("#")]
    assert all(len(pin) == 2 for pin in pinned), "every lock line is name==version"
    return {name.lower().replace("_", "-"): version for name, version in pinned}


def test_the_lock_satisfies_every_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["rocksdb"]]
    locked = pins()
    for text in declared:
        requirement = Requirement(text)
        name = requirement.name.lower().replace("_", "-")
        assert name in locked, f"{name} is not in deploy/requirements.lock (python deploy/lock.py)"
        assert requirement.specifier.contains(locked[name]), (
            f"lock has {name}=={locked[name]}, pyproject wants {requirement.specifier}"
        )


def test_the_image_installs_the_lock_and_every_package_as_non_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--requirement deploy/requirements.lock" in dockerfile
    assert "pip install --no-deps /src" in dockerfile  # the project adds nothing unpinned
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    for package in packages:
        name = package.rstrip("*")
        assert re.search(rf"^COPY {name} /src/{name}$", dockerfile, re.M), name
    assert re.search(r"^USER 10001:10001$", dockerfile, re.M)
    assert "/health" in dockerfile.split("HEALTHCHECK", 1)[1]
    assert 'ENTRYPOINT ["crm-scorer"]' in dockerfile and 'CMD ["worker"]' in dockerfile
    assert not re.search(r"(PASSWORD|TOKEN|SECRET)\w*=", dockerfile), "no secret baked in"
