"""The auth-method registry: one module per method, registered by key.

Adding a method is adding a module with a ``METHOD`` instance and listing it here.
"""

from __future__ import annotations

from . import basic, digest, none, oauth1, oauth2, preexisting, soap, token
from .base import (
    ACK_REQUIRED,
    AuthApplyError,
    AuthMethod,
    AuthParamsError,
    CredentialField,
    ParamsModel,
)
from .preexisting import set_connector_lookup

UNKNOWN_METHOD = "Unknown authentication method: {key}."

REGISTRY: dict[str, AuthMethod] = {
    m.METHOD.key: m.METHOD for m in (none, token, basic, digest, oauth2, oauth1, soap, preexisting)
}


class UnknownAuthMethod(KeyError):
    """No method is registered under this key."""

    def __str__(self) -> str:
        return UNKNOWN_METHOD.format(key=self.args[0])


def get_method(key: str) -> AuthMethod:
    """The registered method for a Service's ``auth_method``."""
    try:
        return REGISTRY[key]
    except KeyError:
        raise UnknownAuthMethod(key) from None


def choices() -> list[tuple[str, str]]:
    """(key, label) pairs in registry order, for forms and the API schema."""
    return [(m.key, m.label) for m in REGISTRY.values()]


__all__ = [
    "ACK_REQUIRED",
    "REGISTRY",
    "UNKNOWN_METHOD",
    "AuthApplyError",
    "AuthMethod",
    "AuthParamsError",
    "CredentialField",
    "ParamsModel",
    "UnknownAuthMethod",
    "choices",
    "get_method",
    "set_connector_lookup",
]
