"""Two callbacks for one sign-in at once (a double click, a reload) on SQLite: the second is
told the sign-in is being completed, never a 500, and the flow stays usable by the first."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils.html import escape

from services.models import Authentication, OAuthFlow
from services.oauth import FLOW_BUSY, OAuthFlowError, oauth_flow_finish, oauth_flow_start

from .conftest import token_body


def _hold_the_flow_table(flow_pk: int, held: threading.Event, release: threading.Event) -> None:
    """Another request's transaction writing to the flows table, not yet committed."""
    try:
        with transaction.atomic():
            OAuthFlow.objects.filter(pk=flow_pk).update(name="being completed")
            held.set()
            release.wait(10)
            transaction.set_rollback(True)
    finally:
        connection.close()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's lock errors")
def test_a_callback_racing_another_gets_a_clear_answer_not_a_500(
    transactional_db, actors, client_for, local_service, httpserver
) -> None:  # type: ignore[no-untyped-def]
    _url, state = oauth_flow_start(
        membership=actors.owner_m, workspace=actors.owner_m.personal_workspace,
        service=local_service, name="Raced",
    )  # fmt: skip
    flow = OAuthFlow.objects.get()
    browser = client_for(actors.owner)  # signed in before the other transaction starts
    held, release = threading.Event(), threading.Event()
    other = threading.Thread(target=_hold_the_flow_table, args=(flow.pk, held, release))
    other.start()
    try:
        assert held.wait(5)
        with pytest.raises(OAuthFlowError) as info:
            oauth_flow_finish(user=actors.owner, state=state, code="the-code")
        assert info.value.message == FLOW_BUSY and info.value.code == "busy"
        page = browser.get("/oauth2/callback", {"state": state, "code": "c"})
        assert page.status_code == 400
        assert escape(FLOW_BUSY) in page.content.decode()
    finally:
        release.set()
        other.join(10)
    # nothing was consumed: the sign-in completes normally afterwards
    assert OAuthFlow.objects.get().used_at is None
    httpserver.expect_oneshot_request("/token", method="POST").respond_with_json(token_body())
    done: Any = oauth_flow_finish(user=actors.owner, state=state, code="the-code")
    assert Authentication.objects.get() == done and done.name == "Raced"


def test_a_flow_claimed_between_the_checks_and_the_claim_is_busy(
    actors, local_service, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The claim is a compare-and-set: if another callback set used_at first, this one loses."""
    from services import oauth

    _url, state = oauth_flow_start(
        membership=actors.owner_m, workspace=actors.owner_m.personal_workspace,
        service=local_service, name="Raced",
    )  # fmt: skip
    real_filter = OAuthFlow.objects.filter

    class Racing:
        """The first filter(pk=..., used_at__isnull=True) sees the other callback's claim."""

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            if "used_at__isnull" in kwargs:
                from django.utils import timezone

                real_filter(pk=kwargs["pk"]).update(used_at=timezone.now())
            return real_filter(*args, **kwargs)

    monkeypatch.setattr(oauth.OAuthFlow.objects, "filter", Racing())
    with pytest.raises(OAuthFlowError) as info:
        oauth_flow_finish(user=actors.owner, state=state, code="x")
    assert info.value.code == "busy" and info.value.message == FLOW_BUSY
