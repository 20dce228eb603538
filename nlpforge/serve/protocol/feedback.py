"""``POST /v1/feedback``: a rating and/or the answer the user wanted, about one served completion."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200, description="the `id` of the chat completion the feedback is about")
    rating: Literal["up", "down"] | None = None
    preferred: str | None = Field(None, description="the answer the user wanted instead")
    choice: int = Field(0, ge=0, le=1024)
    comment: str | None = None

    @model_validator(mode="after")
    def _says_something(self) -> FeedbackRequest:
        if self.rating is None and self.preferred is None:
            raise ValueError("give `rating` (up|down) and/or `preferred` (the answer you wanted)")
        return self


class FeedbackResponse(BaseModel):
    id: str
    stored: bool = True
    revision: int = Field(1, description="how many times feedback on this completion choice was given; the last one counts")
