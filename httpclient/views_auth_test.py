"""The "Test" button: run the service's test request with this authentication, now.

The check itself (httpclient.health) sends the test request through the runner and reports
what it saw through services' status functions; this view says what happened and which status
that left the authentication in, back on the authentication's page (no JavaScript needed).
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from httpclient.health import check_authentication, service_to_check_with
from httpclient.models import CallSource
from services.access import get_authentication_for_member
from workspaces.access import org_member_required

TEST_PASSED = "Test passed: {method} {path} answered {status} in {ms} ms. Status: {label}."
TEST_REFUSED = "Test failed: {method} {path} answered {status}. Status now: {label}."
TEST_ERROR = "Test failed: {error} Status now: {label}."
TEST_NOT_RUN = "Could not test: {message}"


@require_POST
@org_member_required
def authentication_test(request: HttpRequest, authentication_id: uuid.UUID) -> HttpResponse:
    """Run the check as the member pressing the button, then show its verdict."""
    membership = request.membership  # type: ignore[attr-defined]
    authentication = get_authentication_for_member(membership, authentication_id)
    outcome = check_authentication(
        authentication=authentication, membership=membership, source=CallSource.TEST
    )
    result, fresh = outcome.result, outcome.authentication
    label = fresh.get_status_display()
    if result is None:
        messages.error(request, TEST_NOT_RUN.format(message=outcome.message))
        return redirect(fresh.get_absolute_url())
    service = service_to_check_with(fresh)
    test = (service.test_request if service is not None else None) or {}
    words = {
        "method": str(test.get("method") or "GET").upper(),
        "path": test.get("path") or "the test request",
        "status": result.status,
        "ms": round(result.elapsed_ms),
        "label": label,
    }
    if outcome.ok:
        messages.success(request, TEST_PASSED.format(**words))
    elif result.status is not None:
        messages.error(request, TEST_REFUSED.format(**words))
    else:
        messages.error(request, TEST_ERROR.format(error=result.error, label=label))
    return redirect(fresh.get_absolute_url())
