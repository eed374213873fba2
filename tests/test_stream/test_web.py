"""The HTTP surface: which endpoints exist under which settings, and the token check."""

from __future__ import annotations

import pytest

from stream.app import build_app
from stream.settings import Settings
from stream.web import authorized


def routes(**settings: object) -> set[str]:
    return set(build_app(Settings.model_validate(settings), 8).app.web.views)


def test_the_customer_endpoint_can_be_turned_off() -> None:
    assert "/customers/{customer_id}" in routes()
    assert routes(web_customers=False) == {"/health", "/ready", "/models", "/metrics"}


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer s3cret", True),
        ("bearer s3cret ", True),
        ("Bearer s3cre", False),
        ("Bearer", False),
        ("Basic s3cret", False),
        ("s3cret", False),
        (None, False),
    ],
)
def test_a_token_is_needed_exactly_when_configured(header: str | None, ok: bool) -> None:
    assert authorized("s3cret", header) is ok
    assert authorized("", header)  # no token configured: open
