"""Customer value: what a customer brought so far and what is expected from them.

- ``net_value`` = revenue - cost to serve, to date (``CustomerState.net_value``).
- value rate ``r`` = net_value / max(tenure_days, 30), in money per day: the customer's
  average net value per day so far (a 30-day floor keeps new customers from
  extrapolating one order).
- expected remaining lifetime ``L`` in days: with ``p`` the probability of churning
  within the horizon ``H``, the number of further horizons survived is geometric with
  mean ``(1 - p) / p``; ``L = H * (1 - p) / p``, capped at ``max_years``.
- ``clv`` = r * L, the expected future net value (not discounted).
- ``value_at_risk`` = p * clv: what the business expects to lose to churn.

>>> round(expected_clv(net_value=600.0, tenure_days=60.0, churn_proba=0.5), 2)
900.0
>>> round(value_at_risk(0.5, 900.0), 2)
450.0
"""

from __future__ import annotations

HORIZON_DAYS = 90.0
MAX_YEARS = 3.0


def expected_clv(
    net_value: float,
    tenure_days: float,
    churn_proba: float,
    horizon_days: float = HORIZON_DAYS,
    max_years: float = MAX_YEARS,
) -> float:
    rate = max(net_value, 0.0) / max(tenure_days, 30.0)
    p = min(max(churn_proba, 1e-6), 1.0)
    lifetime = min(horizon_days * (1.0 - p) / p, max_years * 365.0)
    return rate * lifetime


def value_at_risk(churn_proba: float, clv: float) -> float:
    return churn_proba * clv
