"""HTTP Digest (RFC 7616): answered by httpx's DigestAuth flow after the server's challenge."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from .base import AuthMethod, ParamsModel, require_secret
from .basic import PASSWORD_FIELD, PASSWORD_LABEL, USERNAME_FIELD, USERNAME_LABEL


class DigestMethod(AuthMethod):
    """The request goes out bare; httpx answers the 401 challenge and resends it."""

    key = "digest"
    label = "HTTP Digest"
    credential_fields = [USERNAME_FIELD, PASSWORD_FIELD]

    def auth_for(self, params: ParamsModel, secrets: Mapping[str, str]) -> httpx.Auth | None:
        username = require_secret(secrets, "username", USERNAME_LABEL)
        password = require_secret(secrets, "password", PASSWORD_LABEL)
        return httpx.DigestAuth(username, password)


METHOD = DigestMethod()
