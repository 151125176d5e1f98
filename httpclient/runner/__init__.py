"""The HTTP-client runner: `execute(call) -> Result`, the one way calls leave traysvc."""

from httpclient.runner.execute import execute
from httpclient.runner.types import (
    BODY_TYPES,
    METHODS,
    Call,
    CallRejected,
    Page,
    RequestEcho,
    Result,
    Retry,
    UploadedFile,
)

__all__ = [
    "BODY_TYPES",
    "METHODS",
    "Call",
    "CallRejected",
    "Page",
    "RequestEcho",
    "Result",
    "Retry",
    "UploadedFile",
    "execute",
]
