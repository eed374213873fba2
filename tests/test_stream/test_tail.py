from __future__ import annotations

from stream.tail import describe


def test_alert_lines_show_who_why_and_the_money() -> None:
    line = describe(
        "alerts",
        {
            "ts": "2011-10-10T00:00:00Z",
            "severity": "medium",
            "kind": "negative_feedback",
            "customer_id": "14461",
            "reasons": [{"code": "rating", "text": "rated 2 of 5"}],
            "value_at_risk": 766.4,
            "excerpt": "late again",
        },
    )
    assert line.startswith("2011-10-10T00:00:00  MEDIUM   negative_feedback customer    14461")
    assert line.endswith('rated 2 of 5  [value at risk 766]  "late again"')


def test_global_alerts_name_no_customer() -> None:
    line = describe(
        "alerts",
        {
            "ts": "2011-10-07T17:49:00Z",
            "severity": "high",
            "kind": "sentiment_surge",
            "customer_id": None,
            "reasons": [{"code": "z_score", "text": "z = 4.0"}],
        },
    )
    assert "all customers" in line and line.endswith("z = 4.0")
