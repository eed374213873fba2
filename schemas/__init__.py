"""Public contracts: input events and output records (pydantic v2, JSON on the wire)."""
