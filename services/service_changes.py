"""What a change to a service's definition does to the authentications that use it.

services.services.service_update calls these inside its transaction: moving the base URL to
another host needs a confirmation when other people's credentials would follow it there, and
an extra parameter that changes its secret flag has its stored values moved between the
plaintext ``values`` and the encrypted secrets of every authentication of the service.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from services.models import Authentication, Service
from workspaces.models import Membership

ORIGIN_CHANGE_NEEDS_CONFIRMATION = (
    "Changing the base URL from {old} to {new} sends {count} authentication(s) of {people} "
    "other person(s) to the new host with their next call. Tick “confirm the new host” "
    "(API: confirm_origin_change: true) if that is intended."
)

DEFAULT_PORTS = {"http": 80, "https": 443}


def url_origin_text(url: str) -> str:
    """scheme://host[:port] of a (validated) base URL, templates kept: what a change moves."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None or port == DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _others_authentications(service: Service, actor: Membership) -> QuerySet[Authentication]:
    """Authentications of other people that a call through this service would send.

    A pre-existing service takes any authentication of its connector, so those count too.
    """
    fits = Q(service=service)
    if service.auth_method == "preexisting":
        key = (service.auth_params or {}).get("connector") or service.connector
        if key:
            fits |= Q(organization_id=service.organization_id, service__isnull=True, connector=key)
    return Authentication.objects.filter(fits).exclude(created_by=actor.user)


def check_origin_change(
    service: Service, *, new_base_url: str, actor: Membership, confirmed: bool
) -> dict[str, Any] | None:
    """Refuse an unconfirmed move of other people's credentials to a new host.

    Returns what to audit when the origin changes (None when it does not).
    """
    old, new = url_origin_text(service.base_url), url_origin_text(new_base_url)
    if old == new:
        return None
    others = _others_authentications(service, actor)
    count = others.count()
    people = others.values_list("created_by_id", flat=True).distinct().count()
    if count and not confirmed:
        message = ORIGIN_CHANGE_NEEDS_CONFIRMATION.format(
            old=old, new=new, count=count, people=people
        )
        raise ValidationError({"confirm_origin_change": message})
    return {"from": old, "to": new, "authentications": count, "people": people}


def move_secret_values(
    service: Service, old_params: list[dict[str, Any]], new_params: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """Keep every authentication's values where the new definition says they belong.

    An extra parameter that became secret has its stored values moved from the plaintext
    ``values`` into the encrypted secrets (and back when it stops being secret), so a value
    never stays readable after its parameter was made secret. Returns what to audit.
    """
    was_secret = {str(p["key"]): bool(p.get("secret")) for p in old_params}
    to_secrets = [str(p["key"]) for p in new_params if p.get("secret")]
    to_values = [
        str(p["key"]) for p in new_params if not p.get("secret") and was_secret.get(str(p["key"]))
    ]
    if not to_secrets and not to_values:
        return None
    moved = 0
    rows = Authentication.objects.select_for_update(of=("self",)).filter(service=service)
    for authentication in rows.order_by("pk"):
        values = dict(authentication.values or {})
        stored = authentication.get_secrets() if authentication.secrets else {}
        changed = False
        for key in to_secrets:
            if key in values:
                value = values.pop(key)
                stored.setdefault(key, value)
                changed = True
        for key in to_values:
            if key in stored:
                values[key] = stored.pop(key)
                changed = True
        if changed:
            authentication.values = values
            authentication.set_secrets(stored)
            authentication.save(update_fields=["values", "secrets", "updated_at"])
            moved += 1
    if not moved:
        return None
    became_secret = [k for k in to_secrets if not was_secret.get(k)]
    return {"to_secrets": became_secret, "to_values": to_values, "authentications": moved}
