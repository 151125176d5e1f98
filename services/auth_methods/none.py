"""No authentication: public APIs, or ones authenticated by extra params alone."""

from __future__ import annotations

from .base import AuthMethod


class NoneMethod(AuthMethod):
    """Sends requests as they are."""

    key = "none"
    label = "No authentication"


METHOD = NoneMethod()
