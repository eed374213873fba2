"""The worker's garbage-collector policy (stream.collector), on this process's own
collector: survivors of a full collection frozen, nothing younger, cycles still found."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from stream.collector import SurvivorFreezer


class Node:
    """An object the collector tracks, that can be part of a cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> tuple[Node, weakref.ref[Node]]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a, weakref.ref(b)


def frozen(obj: object) -> bool:
    """Out of every generation: in the permanent one."""
    return gc.is_tracked(obj) and not any(o is obj for o in gc.get_objects())


@pytest.fixture
def freezer() -> Iterator[SurvivorFreezer]:
    freezer = SurvivorFreezer()
    freezer.install()
    try:
        yield freezer
    finally:
        freezer.uninstall()
        gc.unfreeze()


def test_survivors_of_a_full_collection_are_frozen_and_nothing_younger(
    freezer: SurvivorFreezer,
) -> None:
    survivor = Node()
    gc.collect()
    assert frozen(survivor) and freezer.full_collections == 1
    younger = Node()
    gc.collect(1)  # not a full one: nothing frozen by it
    assert not frozen(younger)
    gc.collect()
    assert frozen(younger) and freezer.full_collections == 2


def test_a_cycle_made_after_a_freeze_is_collected(freezer: SurvivorFreezer) -> None:
    gc.collect()
    a, b = cycle()
    del a
    gc.collect()
    assert b() is None


def test_a_frozen_cycle_is_collected_once_thawed(freezer: SurvivorFreezer) -> None:
    a, b = cycle()
    gc.collect()
    assert frozen(a)
    del a
    gc.collect()
    assert b() is not None  # what freezing costs until the next thaw
    freezer.thaw()
    gc.collect()
    assert b() is None


@pytest.mark.parametrize("freeze", [True, False])
def test_every_collection_is_timed_by_generation_frozen_or_not(freeze: bool) -> None:
    def full_collections_timed() -> float:
        count = REGISTRY.get_sample_value("crm_gc_pause_seconds_count", {"generation": "2"})
        return count or 0.0

    freezer = SurvivorFreezer(freeze)
    freezer.install()
    try:
        before = full_collections_timed()
        survivor = Node()
        gc.collect()
        gc.collect()
        assert full_collections_timed() == before + 2
        assert frozen(survivor) is freeze
    finally:
        freezer.uninstall()
        gc.unfreeze()
