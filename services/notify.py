"""Telling people that an authentication stopped (or started again) working.

Three channels, all queued after the transaction commits so a rolled-back change notifies
nobody: an email to the authentication's creator and the org's owners and admins, an in-app
notification for each of them, and the org's webhook (when `Organization.webhook_url` is set).

Webhook deliveries are JSON, signed: ``X-Traysvc-Signature: sha256=<hex>`` is the HMAC-SHA256
of the raw request body, keyed with the org's signing secret. That secret is not stored: it is
``hex(HMAC-SHA256(SECRET_KEY, "webhook:" + org.public_id))`` (see `webhook_secret`), so it is
stable across restarts, differs per organization and changes when SECRET_KEY is rotated.
A receiver verifies with ``hmac.compare_digest(expected, header)``. The payload carries no
secret, only the authentication's id, name, status and the error in words.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.urls import NoReverseMatch
from django.utils import timezone

from services.models import Authentication, AuthStatus
from services.status import FAILING, WARNING, explain_status
from workspaces.models import Membership, Organization, Role
from workspaces.services import notification_create, organization_record_webhook

logger = logging.getLogger(__name__)

EVENT = "authentication.status_changed"
SIGNATURE_HEADER = "X-Traysvc-Signature"
EVENT_HEADER = "X-Traysvc-Event"
DELIVERY_HEADER = "X-Traysvc-Delivery"

TITLE_FAILING = "{name}: {status}"
TITLE_RECOVERED = "{name} is working again"
BODY_RECOVERED = "The authentication “{name}” works again (it was: {previous})."
EMAIL_FOOTER = "Open it: {url}"
FALLBACK_PATH = "/o/{org}/authentications/"


def authentication_link(authentication: Authentication) -> str:
    """The authentication's page; the org's list page while that URL is not routed."""
    try:
        return authentication.get_absolute_url()
    except NoReverseMatch:
        return FALLBACK_PATH.format(org=authentication.organization.slug)


def webhook_secret(organization: Organization) -> str:
    """The org's webhook signing secret (hex), derived from SECRET_KEY: show it to admins."""
    message = f"webhook:{organization.public_id}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def webhook_signature(organization: Organization, body: bytes) -> str:
    """The X-Traysvc-Signature value for a body: ``sha256=<hex HMAC-SHA256>``."""
    digest = hmac.new(webhook_secret(organization).encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def recipients(authentication: Authentication) -> list[AbstractBaseUser]:
    """Its creator (while still a member) and the org's owners and admins, once each."""
    members = Membership.objects.filter(organization_id=authentication.organization_id)
    wanted = members.filter(role__in=[Role.OWNER, Role.ADMIN])
    if authentication.created_by_id is not None:
        wanted = wanted | members.filter(user_id=authentication.created_by_id)
    user_ids = wanted.values("user_id")
    return list(get_user_model().objects.filter(is_active=True, pk__in=user_ids).order_by("pk"))


def _message(authentication: Authentication, previous: str) -> tuple[str, str, str]:
    """(title, body, level) of the notice for the authentication's current status."""
    status = authentication.status
    name = authentication.name
    if status == AuthStatus.ACTIVE:
        previous_label = AuthStatus(previous).label if previous in AuthStatus.values else previous
        return (
            TITLE_RECOVERED.format(name=name),
            BODY_RECOVERED.format(name=name, previous=previous_label),
            "success",
        )
    meaning, fix = explain_status(status)
    parts = [meaning]
    if authentication.last_error:
        parts.append(authentication.last_error)
    if fix:
        parts.append(fix)
    level = "error" if status in FAILING else "warning"
    return (
        TITLE_FAILING.format(name=name, status=AuthStatus(status).label),
        "\n\n".join(parts),
        level,
    )


def payload(authentication: Authentication, previous: str) -> dict[str, Any]:
    """The webhook body: ids, names, statuses and the error in words; never a secret."""
    meaning, fix = explain_status(authentication.status)
    return {
        "event": EVENT,
        "id": str(uuid.uuid4()),
        "occurred_at": timezone.now().isoformat(),
        "organization": {
            "id": str(authentication.organization.public_id),
            "slug": authentication.organization.slug,
        },
        "authentication": {
            "id": str(authentication.public_id),
            "name": authentication.name,
            "service": (
                str(authentication.service.public_id) if authentication.service_id else None
            ),
            "connector": authentication.connector or None,
            "status": authentication.status,
            "previous_status": previous,
            "error": authentication.last_error,
            "error_code": authentication.last_error_code,
            "explanation": meaning,
            "fix": fix,
            "url": settings.TRAYSVC_PUBLIC_URL + authentication_link(authentication),
        },
    }


def _send_emails(addresses: list[str], subject: str, body: str) -> None:
    for address in addresses:
        try:
            send_mail(subject, body, None, [address])
        except Exception:  # a mail server problem must not break the refresh that notified
            logger.exception("could not email %s about an authentication", address)


def notify_transition(*, authentication: Authentication, previous: str) -> None:
    """Notify about the authentication's new status (called by authentication_transition)."""
    if authentication.status not in FAILING | WARNING | {AuthStatus.ACTIVE}:
        return
    organization = authentication.organization
    title, body, level = _message(authentication, previous)
    link = authentication_link(authentication)
    users = recipients(authentication)
    for user in users:
        notification_create(
            organization=organization, user=user, title=title, body=body, level=level, link=link
        )
    addresses = [u.email for u in users if u.email]
    if addresses:
        email_body = f"{body}\n\n{EMAIL_FOOTER.format(url=settings.TRAYSVC_PUBLIC_URL + link)}\n"
        subject = f"[traysvc] {title}"
        transaction.on_commit(lambda: _send_emails(addresses, subject, email_body))
    if organization.webhook_url:
        text = json.dumps(payload(authentication, previous), separators=(",", ":"))
        org_id = organization.pk

        def enqueue() -> None:
            from services.tasks import webhook_task

            try:
                webhook_task.delay(org_id, text)
            except Exception:  # broker down: the in-app notice and email still went out
                logger.exception("could not queue the webhook for organization %s", org_id)

        transaction.on_commit(enqueue)


WEBHOOK_TIMEOUT_SECONDS = 10
WEBHOOK_MAX_RESPONSE_BYTES = 64 * 1024
DELIVERED, RETRY, DROPPED = "delivered", "retry", "dropped"
WEBHOOK_REFUSED = "Not sent: {} (change the webhook URL)."
WEBHOOK_UNREACHABLE = "Could not reach the receiver: {}"
WEBHOOK_ANSWERED = "The receiver answered HTTP {}"
RETRYING = "; retrying."
NOT_RETRIED = "; dropped (only network errors, 5xx, 408, 425 and 429 are retried)."
WEBHOOK_GIVEN_UP = "Given up after {} attempts; the last: {}."


def deliver_webhook(*, organization_id: int, body: str) -> str:
    """POST one signed delivery through egress: DELIVERED, RETRY (try again later) or DROPPED."""
    from traysvc import egress

    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None or not organization.webhook_url:
        return DROPPED
    data = body.encode()
    try:
        delivery = json.loads(body).get("id", "")
    except ValueError:
        delivery = ""
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: webhook_signature(organization, data),
        EVENT_HEADER: EVENT,
        DELIVERY_HEADER: str(delivery),
    }
    try:
        response = egress.send(
            "POST",
            organization.webhook_url,
            content=data,
            headers=headers,
            timeout=WEBHOOK_TIMEOUT_SECONDS,
            max_bytes=WEBHOOK_MAX_RESPONSE_BYTES,
        )
    except egress.DestinationRefused as exc:
        logger.warning("webhook of organization %s refused: %s", organization.slug, exc)
        _record(organization, WEBHOOK_REFUSED.format(exc))
        return DROPPED
    except egress.EgressError as exc:
        logger.warning("webhook of organization %s failed: %s", organization.slug, exc)
        _record(organization, WEBHOOK_UNREACHABLE.format(exc) + RETRYING)
        return RETRY
    status = response.status_code
    if 200 <= status < 300:
        _record(organization, "")
        return DELIVERED
    logger.warning("webhook of organization %s answered %s", organization.slug, status)
    retry = status >= 500 or status in (408, 425, 429)
    _record(organization, WEBHOOK_ANSWERED.format(status) + (RETRYING if retry else NOT_RETRIED))
    return RETRY if retry else DROPPED


def _record(organization: Organization, error: str) -> None:
    # Scoped to the URL this delivery went to: if an admin changed it meanwhile, the new
    # receiver's record starts empty and stays so.
    organization_record_webhook(
        organization=organization, url=organization.webhook_url, error=error
    )


def webhook_given_up(*, organization_id: int, attempts: int) -> None:
    """The last retry failed too: say so where admins look, not only in a worker's log."""
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None or not organization.webhook_error.endswith(RETRYING):
        return  # the URL changed meanwhile (its record was reset), or it was delivered after all
    last = organization.webhook_error.removesuffix(RETRYING)
    _record(organization, WEBHOOK_GIVEN_UP.format(attempts, last))
