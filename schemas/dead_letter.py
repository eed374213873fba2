"""``DeadLetter``: a message that was not processed, with the reason and the original
bytes (base64), so that nothing bad is silently dropped and everything can be replayed."""

from __future__ import annotations

import base64
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEAD_LETTER_SCHEMA_VERSION: Literal["1.0.0"] = "1.0.0"


class RejectReason(StrEnum):
    EMPTY = "empty"
    OVERSIZED = "oversized"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    INVALID = "invalid"
    WRONG_TOPIC = "wrong_topic"
    PROCESSING_ERROR = "processing_error"


class DeadLetter(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: Literal["1.0.0"] = DEAD_LETTER_SCHEMA_VERSION
    reason_code: RejectReason
    reason: str = Field(description="Readable explanation of what was wrong.")
    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    timestamp_ms: int | None = Field(default=None, description="Kafka timestamp of the message.")
    dead_lettered_at: datetime
    key_b64: str | None = Field(default=None, description="Original key, base64.")
    value_b64: str | None = Field(default=None, description="Original value bytes, base64.")
    value_size: int = Field(ge=0, description="Size of the original value in bytes.")
    value_truncated: bool = Field(
        default=False, description="True when value_b64 holds only the first bytes."
    )

    def original_value(self) -> bytes | None:
        return None if self.value_b64 is None else base64.b64decode(self.value_b64)


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")
