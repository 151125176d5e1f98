"""The shared service schemas (extra params, test request, pagination).

Auth params have one shape, the auth method's params model: see test_auth_methods*.py.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.schemas import (
    ERR_PAGINATION_MISSING,
    ERR_PARAM_KEY_RESERVED,
    ERR_PATH_SLASH,
    ERR_SECRET_DEFAULT,
    ExtraParam,
    Pagination,
    TestRequest,
)


def messages(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[str, str]]:
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in exc.value.errors()]


def test_extra_param_rules() -> None:
    with pytest.raises(ValidationError) as info:
        ExtraParam(key="password", label="Password")
    assert messages(info) == [("key", ERR_PARAM_KEY_RESERVED.format(key="password"))]
    with pytest.raises(ValidationError) as info:
        ExtraParam(key="Sub-domain", label="Subdomain")
    assert messages(info)[0][0] == "key"
    with pytest.raises(ValidationError) as info:
        ExtraParam(key="api_secret", label="Secret", secret=True, default="x")
    assert messages(info) == [("", ERR_SECRET_DEFAULT)]
    param = ExtraParam(key="subdomain", label="Subdomain", pattern="^[a-z]+$")
    assert param.matches("acme") and not param.matches("acme.evil")


def test_test_request_path_must_be_a_path() -> None:
    with pytest.raises(ValidationError) as info:
        TestRequest(path="me")
    assert messages(info) == [("path", ERR_PATH_SLASH)]
    assert TestRequest(method="post", path="/users/me").method == "POST"  # type: ignore[arg-type]


def test_pagination_needs_the_fields_of_its_kind() -> None:
    with pytest.raises(ValidationError) as info:
        Pagination(kind="cursor", cursor_path="next_page.offset")
    assert messages(info) == [
        ("", ERR_PAGINATION_MISSING.format(field="cursor_param", kind="cursor"))
    ]
    header = Pagination(kind="cursor", cursor_path="header:X-Next-Cursor", cursor_param="cursor")
    assert header.cursor_path == "header:X-Next-Cursor"
    with pytest.raises(ValidationError):
        Pagination(kind="link", cursor_path="next..page")
