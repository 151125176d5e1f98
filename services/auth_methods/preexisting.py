"""Pre-existing: a custom service that accepts the authentications of a catalog connector.

The catalog lives elsewhere; its lookup is injected with ``set_connector_lookup`` (by
``services.apps`` at startup) so this package does not import it. The runner resolves the
connector and applies the connector's own method and params (``uses_connector`` is True), so
``prepare`` here refuses to guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import httpx

from .base import AuthApplyError, AuthMethod, ParamsBase, ParamsModel, RequiredText, add_error

CONNECTOR_INVALID = "Enter a connector key: letters, digits, hyphens and underscores."
CONNECTOR_UNKNOWN = "There is no connector with this key."
RESOLVE_CONNECTOR = (
    "A pre-existing service uses its connector's authentication method; "
    "apply the connector's method instead."
)

_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")


def _any_slug(key: str) -> bool:
    return bool(_SLUG.match(key))


_connector_exists: Callable[[str], bool] = _any_slug


def set_connector_lookup(fn: Callable[[str], bool] | None) -> Callable[[str], bool]:
    """Install the catalog's "does this connector exist?" check; None restores the default.

    services.apps installs the catalog's lookup at startup. Returns the previous check, so a
    test that swaps in its own can put the installed one back.
    """
    global _connector_exists  # noqa: PLW0603 - one process-wide hook, set at app startup
    previous = _connector_exists
    _connector_exists = fn or _any_slug
    return previous


class PreexistingParams(ParamsBase):
    """Which catalog connector's authentications this service accepts."""

    connector: RequiredText


class PreexistingMethod(AuthMethod):
    """Delegates to the connector: no credential fields of its own."""

    key = "preexisting"
    label = "Pre-existing connector authentication"
    params_model = PreexistingParams
    uses_connector = True

    def check_params(self, model: ParamsModel) -> tuple[ParamsModel, dict[str, list[str]]]:
        assert isinstance(model, PreexistingParams)  # noqa: S101 - narrowing
        errors: dict[str, list[str]] = {}
        if not _SLUG.match(model.connector):
            add_error(errors, "connector", CONNECTOR_INVALID)
        elif not _connector_exists(model.connector):
            add_error(errors, "connector", CONNECTOR_UNKNOWN)
        return model, errors

    def apply(
        self, request: httpx.Request, *, params: ParamsModel, secrets: Mapping[str, str]
    ) -> httpx.Request:
        raise AuthApplyError(RESOLVE_CONNECTOR)

    def secret_values(
        self, params: ParamsModel | Mapping[str, object], secrets: Mapping[str, str]
    ) -> list[str]:
        # The connector's method knows which of these are secret; redact them all meanwhile.
        return [v for v in dict.fromkeys(secrets.values()) if v]


METHOD = PreexistingMethod()
