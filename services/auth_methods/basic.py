"""HTTP Basic (RFC 7617): user name and password in every request."""

# ruff: noqa: S105 - message constants and field names mention tokens; none is a secret

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .base import (
    AuthMethod,
    CredentialField,
    ParamsModel,
    basic_header_value,
    require_secret,
    unique,
)

USERNAME_HAS_COLON = "A user name for Basic authentication cannot contain a colon."
USERNAME_LABEL = "user name"
PASSWORD_LABEL = "password"

USERNAME_FIELD = CredentialField("username", "User name", secret=False, required=True)
PASSWORD_FIELD = CredentialField("password", "Password", secret=True, required=True, strip=False)


class BasicMethod(AuthMethod):
    """``Authorization: Basic base64(user:password)``."""

    key = "basic"
    label = "HTTP Basic"
    credential_fields = [USERNAME_FIELD, PASSWORD_FIELD]

    def check_credentials(self, values: dict[str, str]) -> dict[str, list[str]]:
        if ":" in values.get("username", ""):
            return {"username": [USERNAME_HAS_COLON]}
        return {}

    def apply(
        self, request: httpx.Request, *, params: ParamsModel, secrets: Mapping[str, str]
    ) -> httpx.Request:
        username = require_secret(secrets, "username", USERNAME_LABEL)
        password = require_secret(secrets, "password", PASSWORD_LABEL)
        request.headers["Authorization"] = basic_header_value(username, password)
        return request

    def secret_values(
        self, params: ParamsModel | Mapping[str, Any], secrets: Mapping[str, str]
    ) -> list[str]:
        password = secrets.get("password")
        if not password:
            return []
        header = basic_header_value(secrets.get("username", ""), password)
        return unique([password, header, header.removeprefix("Basic ")])


METHOD = BasicMethod()
