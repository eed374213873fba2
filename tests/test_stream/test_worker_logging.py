"""The worker's logging: the configured level holds (no terminal spinner lowering it)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.app import build_app
from stream.settings import Settings
from stream.worker import faust_worker


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield root
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.mark.parametrize("level", ["warning", "error"])
def test_debug_records_are_not_built_above_info(
    level: str, tmp_path: Path, root_logger: logging.Logger
) -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:9", data_dir=tmp_path, log_level=level)
    loop = asyncio.new_event_loop()
    try:
        worker = faust_worker(build_app(settings, 2).app, settings, loop)
        worker._setup_logging()
    finally:
        loop.close()
    assert root_logger.level == logging.getLevelName(level.upper())
    # Faust logs every message it sends at DEBUG: at a higher level that must cost a
    # level check, not a record.
    assert not logging.getLogger("faust.topics").isEnabledFor(logging.DEBUG)
