"""Health checks: run a service's test request with an authentication and report the verdict.

A check is an ordinary call through `httpclient.runner.execute` (so it is guarded, redacted and
logged like any other, and an OAuth2 401 gets the runner's one refresh and retry). What it saw
goes to `services.status.authentication_report_check`, which decides what it means for the
authentication (a 401/403 on a token that should work: revoked / needs reconnecting).

Used by the hourly `health_sweep_task` (httpclient/tasks.py) and by the "Test" button.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F, Q
from django.utils import timezone

from httpclient.models import CallSource
from httpclient.runner import Call, Result, execute
from services.catalog import get_connector, load_catalog
from services.models import Authentication, AuthStatus, Service, Source
from services.status import CHECK_ERROR_CODE, USABLE, authentication_report_check
from workspaces.models import Membership

logger = logging.getLogger(__name__)

NO_TEST_REQUEST = (
    "This service has no test request, so it cannot be checked: edit the service and set one "
    "(a harmless GET such as /me)."
)
NO_SERVICE_FOR_CONNECTOR = (
    "This authentication's connector is no longer in the catalog, so there is nothing to check "
    "it with."
)
CHECK_INTERVAL = timedelta(hours=6)
SWEEP_LIMIT = 200
CHECK_TIMEOUT_SECONDS = 20.0


@dataclass
class CheckOutcome:
    """What a check did: the call's result (None when nothing could be sent) and the verdict."""

    authentication: Authentication
    result: Result | None
    ok: bool
    message: str = ""


def connector_service(authentication: Authentication) -> Service | None:
    """An unsaved stand-in Service made only of the catalog connector's own definition.

    A connector authentication belongs to no service, and no member-defined service may stand
    in for it: any member can create a pre-existing service with their own base URL and test
    request, and a check through it would send this authentication's token to their server.
    The catalog's base URL and test request are fixed by traysvc, so the token only ever goes
    to the provider it was issued by. Never saved (pk None: the call log has no service).
    """
    connector = get_connector(authentication.connector) if authentication.connector else None
    if connector is None:
        return None
    return Service(
        organization=authentication.organization,
        name=connector.name,
        slug=connector.key,
        base_url=connector.base_url,
        auth_method="preexisting",
        auth_params={"connector": connector.key},
        connector=connector.key,
        extra_params=[p.model_dump(mode="json") for p in connector.extra_params],
        default_headers=dict(connector.default_headers),
        test_request=connector.test_request.model_dump(mode="json"),
        source=Source.CATALOG,
        source_detail=connector.key,
    )


def service_to_check_with(authentication: Authentication) -> Service | None:
    """The service whose test request checks this authentication: its own service, or for a
    connector authentication the connector's catalog definition (``connector_service``)."""
    if authentication.service_id is not None:
        return authentication.service
    return connector_service(authentication)


def check_authentication(
    *,
    authentication: Authentication,
    membership: Membership | None = None,
    source: str = CallSource.HEALTH,
) -> CheckOutcome:
    """Run the test request and report it. `membership` is the user pressing "Test" (their
    access is checked by the runner); None for the scheduled check."""
    service = service_to_check_with(authentication)
    if service is None:
        return CheckOutcome(authentication, None, False, NO_SERVICE_FOR_CONNECTOR)
    test = service.test_request or {}
    if not test.get("path"):
        return CheckOutcome(authentication, None, False, NO_TEST_REQUEST)
    result = execute(
        Call(
            membership=membership,
            service=service,
            authentication=authentication,
            method=str(test.get("method") or "GET").upper(),
            path=test["path"],
            timeout=CHECK_TIMEOUT_SECONDS,
            source=source,
            organization=authentication.organization,
        )
    )
    ok = result.ok and result.status is not None and 200 <= result.status < 400
    fresh = Authentication.objects.select_related("organization", "service").get(
        pk=authentication.pk
    )  # the runner may have refreshed (or failed to refresh) it meanwhile
    fresh = authentication_report_check(
        authentication=fresh, ok=ok, status_code=result.status, error=result.error
    )
    return CheckOutcome(fresh, result, ok, result.error)


def authentications_to_check(*, now: datetime | None = None) -> list[int]:
    """Ids of authentications due a scheduled check: usable ones (and those an earlier check
    failed, so a passing one can clear them) not checked within CHECK_INTERVAL.

    Only those that can be checked: a service with a test request, or a connector still in the
    catalog. The others are never stamped as checked, so picking them would fill every sweep's
    SWEEP_LIMIT with the same rows and starve the rest."""
    now = now or timezone.now()
    stale = Q(last_checked_at__isnull=True) | Q(last_checked_at__lt=now - CHECK_INTERVAL)
    wanted = Q(status__in=list(USABLE)) | Q(
        status__in=[AuthStatus.REVOKED, AuthStatus.NEEDS_REAUTH], last_error_code=CHECK_ERROR_CODE
    )
    checkable = Q(service__test_request__has_key="path") | Q(
        service__isnull=True,
        connector__in=list(load_catalog()),  # every connector has one
    )
    return list(
        Authentication.objects.filter(wanted)
        .filter(stale)
        .filter(checkable)
        .order_by(F("last_checked_at").asc(nulls_first=True), "pk")  # never checked: first
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
