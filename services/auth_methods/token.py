"""API token: a static token sent as Bearer, a custom header, a query parameter or Basic."""

# ruff: noqa: S105 - message constants and field names mention tokens; none is a secret

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .base import (
    AuthMethod,
    CredentialField,
    OptionalHeaderName,
    OptionalText,
    ParamsBase,
    ParamsModel,
    Placement,
    check_token_chars,
    place_token,
    placement_check,
    require_secret,
    token_secret_values,
)

TOKEN_LABEL = "token"
TOKEN_HELP = "The API key or personal access token the provider issued."


class TokenParams(ParamsBase):
    """Where the token goes. ``basic`` sends it as the user name with an empty password."""

    placement: Placement = "bearer"
    header_name: OptionalHeaderName = None
    prefix: OptionalText = None
    query_name: OptionalText = None


class TokenMethod(AuthMethod):
    """A long-lived token the user pastes in."""

    key = "token"
    label = "API token"
    params_model = TokenParams
    credential_fields = [
        CredentialField("token", "Token", secret=True, required=True, help=TOKEN_HELP)
    ]

    def check_params(self, model: ParamsModel) -> tuple[ParamsModel, dict[str, list[str]]]:
        assert isinstance(model, TokenParams)  # noqa: S101 - narrowing for the type checker
        return placement_check(model, model.placement)

    def check_credentials(self, values: dict[str, str]) -> dict[str, list[str]]:
        return check_token_chars(values, "token")

    def apply(
        self, request: httpx.Request, *, params: ParamsModel, secrets: Mapping[str, str]
    ) -> httpx.Request:
        assert isinstance(params, TokenParams)  # noqa: S101
        token = require_secret(secrets, "token", TOKEN_LABEL)
        place_token(
            request,
            token,
            placement=params.placement,
            header_name=params.header_name,
            prefix=params.prefix,
            query_name=params.query_name,
        )
        return request

    def secret_values(
        self, params: ParamsModel | Mapping[str, Any], secrets: Mapping[str, str]
    ) -> list[str]:
        token = secrets.get("token")
        return token_secret_values(token) if token else []


METHOD = TokenMethod()
