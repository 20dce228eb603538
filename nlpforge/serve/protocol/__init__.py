"""The OpenAI wire shapes nlpforge's server speaks, one module per route (as vLLM's
``entrypoints/openai``), as pydantic models: they also make the OpenAPI schema that
schemathesis and clients read, and batch files validate their bodies with the same models.
"""

from nlpforge.serve.protocol.chat import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    ContentPart,
    DeltaMessage,
    ResponseFormat,
)
from nlpforge.serve.protocol.classify import ClassifyItem, ClassifyRequest, ClassifyResponse
from nlpforge.serve.protocol.common import (
    APIError,
    ChoiceLogprobs,
    ErrorBody,
    ErrorResponse,
    LegacyLogprobs,
    SamplingFields,
    TokenLogprob,
    TopLogprob,
    Usage,
    new_id,
)
from nlpforge.serve.protocol.completions import Completion, CompletionChoice, CompletionRequest
from nlpforge.serve.protocol.feedback import FeedbackRequest, FeedbackResponse
from nlpforge.serve.protocol.models import ModelCard, ModelList
from nlpforge.serve.protocol.tokenize import TokenizeRequest, TokenizeResponse

__all__ = [
    "APIError", "AssistantMessage", "ChatChoice", "ChatChunkChoice", "ChatCompletion", "ChatCompletionChunk", "ChatCompletionRequest", "ChatMessage",
    "ChoiceLogprobs", "ClassifyItem", "ClassifyRequest", "ClassifyResponse", "Completion", "CompletionChoice", "CompletionRequest", "ContentPart",
    "DeltaMessage", "ErrorBody", "ErrorResponse", "FeedbackRequest", "FeedbackResponse", "LegacyLogprobs", "ModelCard", "ModelList", "ResponseFormat",
    "SamplingFields", "TokenLogprob", "TokenizeRequest", "TokenizeResponse", "TopLogprob", "Usage", "new_id",
]
