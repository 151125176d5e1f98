"""Writes for tenancy: each function is one user action, atomic, audited."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from workspaces.models import (
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    Notification,
    Organization,
    Role,
    Workspace,
    WorkspaceKind,
    WorkspaceMember,
)

SLUG_TAKEN = "An organization with the address “{slug}” already exists: choose another."
SLUG_RESERVED = "“{slug}” is reserved: choose another address."
INVITATION_INVALID = (
    "This invitation link is not valid. Ask an admin of the organization for a new one."
)
INVITATION_USED = "This invitation has already been used."
INVITATION_EXPIRED = "This invitation has expired. Ask an admin of the organization for a new one."
INVITATION_WRONG_EMAIL = (
    "This invitation was sent to {email}. Sign in with that address to accept it."
)
ALREADY_MEMBER = "{email} is already a member of this organization."
WEBHOOK_REFUSED = "traysvc cannot deliver to this webhook URL: {reason}"
LAST_OWNER = "An organization needs at least one owner: make someone else owner first."
ONLY_OWNER_GRANTS_OWNER = "Only an owner can make someone an owner or change an owner's role."
API_KEY_PREFIX = "tsk_"
RESERVED_SLUGS = {"new", "admin", "api", "accounts", "static", "healthz", "oauth2", "sandbox"}

# Other apps register checks that must pass before a member is removed (e.g. services they
# own must be transferred first). Each returns an error message or None. Keeps the arrows down.
MembershipRemovalGuard = Callable[[Membership], str | None]
membership_removal_guards: list[MembershipRemovalGuard] = []


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def audit(
    *,
    organization: Organization,
    actor: AbstractBaseUser | None,
    action: str,
    target_type: str = "",
    target_id: str = "",
    details: dict | None = None,
) -> AuditEvent:
    """Record an audit row. Callers never pass secrets in details."""
    return AuditEvent.objects.create(
        organization=organization,
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        details=details or {},
    )


def unique_org_slug(name: str) -> str:
    base = slugify(name)[:40] or "org"
    if base in RESERVED_SLUGS:
        base = f"{base}-org"
    slug, n = base, 2
    while Organization.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def organization_create(
    *, name: str, owner: AbstractBaseUser, slug: str | None = None
) -> Organization:
    """Create an org, its owner membership and the owner's personal workspace."""
    slug = slug or unique_org_slug(name)
    if slug in RESERVED_SLUGS:
        raise ValidationError({"slug": SLUG_RESERVED.format(slug=slug)})
    if Organization.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": SLUG_TAKEN.format(slug=slug)})
    org = Organization(name=name, slug=slug)
    org.full_clean()
    try:
        with transaction.atomic():
            org.save()
    except IntegrityError as exc:  # a concurrent create took the slug
        raise ValidationError({"slug": SLUG_TAKEN.format(slug=slug)}) from exc
    membership_create(organization=org, user=owner, role=Role.OWNER, actor=owner)
    audit(
        organization=org,
        actor=owner,
        action="organization.create",
        target_type="organization",
        target_id=org.public_id,
    )
    return org


@transaction.atomic
def membership_create(
    *, organization: Organization, user: AbstractBaseUser, role: str, actor: AbstractBaseUser | None
) -> Membership:
    """A membership always comes with its personal workspace."""
    membership = Membership(organization=organization, user=user, role=role)
    membership.full_clean()
    membership.save()
    label = user.email or user.get_username()
    Workspace.objects.create(
        organization=organization,
        kind=WorkspaceKind.PERSONAL,
        owner=membership,
        name=f"Personal — {label}"[:120],
    )
    audit(
        organization=organization,
        actor=actor,
        action="membership.create",
        target_type="membership",
        target_id=membership.public_id,
        details={"email": user.email, "role": role},
    )
    return membership


def _lock_owners(organization_id: int) -> list[Membership]:
    """Lock the organization's owner memberships for this transaction and return them.

    Every change that could leave an organization without an owner takes these locks first,
    so two owners demoting (or removing) each other at once cannot both pass the last-owner
    check: the second waits, then sees the first's change. (A no-op on SQLite, whose writes
    are serialised anyway.)
    """
    return list(
        Membership.objects.select_for_update()
        .filter(organization_id=organization_id, role=Role.OWNER)
        .order_by("pk")  # one lock order everywhere: no deadlock between two such changes
    )


def _current_role(membership: Membership, owners: list[Membership]) -> str:
    """The membership's role as stored now (the caller's instance may be stale)."""
    if any(owner.pk == membership.pk for owner in owners):
        return Role.OWNER
    stored = Membership.objects.filter(pk=membership.pk).values_list("role", flat=True).first()
    return stored if stored is not None else membership.role


@transaction.atomic
def membership_set_role(*, membership: Membership, role: str, actor: Membership) -> Membership:
    owners = _lock_owners(membership.organization_id)
    membership.role = _current_role(membership, owners)
    actor_role = _current_role(actor, owners)
    if Role.OWNER in (role, membership.role) and actor_role != Role.OWNER:
        raise ValidationError({"role": ONLY_OWNER_GRANTS_OWNER})
    if membership.role == Role.OWNER and role != Role.OWNER:
        _ensure_another_owner(membership, owners)
    membership.role = role
    membership.full_clean()
    membership.save(update_fields=["role", "updated_at"])
    audit(
        organization=membership.organization,
        actor=actor.user,
        action="membership.role",
        target_type="membership",
        target_id=membership.public_id,
        details={"role": role},
    )
    api_key_cache_clear()  # the key acts with the new role at once in this process
    return membership


def _ensure_another_owner(membership: Membership, owners: list[Membership]) -> None:
    """``owners``: the locked owner memberships (``_lock_owners``) of the same transaction."""
    if not any(owner.pk != membership.pk for owner in owners):
        raise ValidationError(LAST_OWNER)


@transaction.atomic
def membership_remove(*, membership: Membership, actor: Membership) -> None:
    """Remove a member. Refused while another app's guard objects (nothing is orphaned)."""
    owners = _lock_owners(membership.organization_id)
    Membership.objects.select_for_update().filter(pk=membership.pk).first()
    membership.role = _current_role(membership, owners)
    if membership.role == Role.OWNER:
        if _current_role(actor, owners) != Role.OWNER:
            raise ValidationError(ONLY_OWNER_GRANTS_OWNER)
        _ensure_another_owner(membership, owners)
    for guard in membership_removal_guards:
        problem = guard(membership)
        if problem:
            raise ValidationError(problem)
    org = membership.organization
    if org.service_owner_id == membership.pk:
        org.service_owner = None
        org.save(update_fields=["service_owner", "updated_at"])
    audit(
        organization=org,
        actor=actor.user,
        action="membership.remove",
        target_type="membership",
        target_id=membership.public_id,
        details={"email": membership.user.email},
    )
    membership.delete()
    api_key_cache_clear()  # the member's keys stop working at once in this process


@transaction.atomic
def organization_set_service_owner(
    *, organization: Organization, membership: Membership | None, actor: Membership
) -> Organization:
    organization.service_owner = membership
    organization.save(update_fields=["service_owner", "updated_at"])
    audit(
        organization=organization,
        actor=actor.user,
        action="organization.service_owner",
        target_type="membership",
        target_id=membership.public_id if membership else "",
    )
    return organization


@transaction.atomic
def invitation_create(
    *, organization: Organization, email: str, role: str, invited_by: Membership
) -> tuple[Invitation, str]:
    """Returns the invitation and its one-time token (only its hash is stored)."""
    email = get_user_model().objects.normalize_email(email).lower()
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise ValidationError({"email": ALREADY_MEMBER.format(email=email)})
    if role == Role.OWNER and invited_by.role != Role.OWNER:
        raise ValidationError({"role": ONLY_OWNER_GRANTS_OWNER})
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        organization=organization,
        email=email,
        role=role,
        token_hash=_hash(token),
        invited_by=invited_by,
        expires_at=timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    invitation.full_clean()
    invitation.save()
    audit(
        organization=organization,
        actor=invited_by.user,
        action="invitation.create",
        target_type="invitation",
        target_id=invitation.public_id,
        details={"email": email, "role": role},
    )
    return invitation, token


def invitation_for_token(token: str) -> Invitation:
    """Look an invitation up by token; ValidationError says why it cannot be used."""
    invitation = (
        Invitation.objects.select_related("organization").filter(token_hash=_hash(token)).first()
    )
    if invitation is None:
        raise ValidationError(INVITATION_INVALID)
    if invitation.accepted_at is not None:
        raise ValidationError(INVITATION_USED)
    if invitation.expires_at <= timezone.now():
        raise ValidationError(INVITATION_EXPIRED)
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: AbstractBaseUser) -> Membership:
    invitation = invitation_for_token(token)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None:
        raise ValidationError(INVITATION_USED)
    if invitation.email.lower() != (user.email or "").lower():
        raise ValidationError(INVITATION_WRONG_EMAIL.format(email=invitation.email))
    existing = Membership.objects.filter(organization=invitation.organization, user=user).first()
    if existing is not None:
        raise ValidationError(ALREADY_MEMBER.format(email=user.email))
    membership = membership_create(
        organization=invitation.organization, user=user, role=invitation.role, actor=user
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by", "updated_at"])
    return membership


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: Membership) -> None:
    audit(
        organization=invitation.organization,
        actor=actor.user,
        action="invitation.revoke",
        target_type="invitation",
        target_id=invitation.public_id,
        details={"email": invitation.email},
    )
    invitation.delete()


@transaction.atomic
def workspace_create_shared(
    *, organization: Organization, name: str, actor: Membership
) -> Workspace:
    workspace = Workspace(organization=organization, kind=WorkspaceKind.SHARED, name=name)
    workspace.full_clean()
    workspace.save()
    WorkspaceMember.objects.create(workspace=workspace, membership=actor)
    audit(
        organization=organization,
        actor=actor.user,
        action="workspace.create",
        target_type="workspace",
        target_id=workspace.public_id,
        details={"name": name},
    )
    return workspace


@transaction.atomic
def workspace_member_add(
    *, workspace: Workspace, membership: Membership, actor: Membership
) -> None:
    if workspace.is_personal:
        raise ValidationError("A personal workspace has exactly one member: its owner.")
    if membership.organization_id != workspace.organization_id:
        raise ValidationError("That person is not a member of this organization.")
    WorkspaceMember.objects.get_or_create(workspace=workspace, membership=membership)
    audit(
        organization=workspace.organization,
        actor=actor.user,
        action="workspace.member_add",
        target_type="workspace",
        target_id=workspace.public_id,
        details={"email": membership.user.email},
    )


@transaction.atomic
def workspace_member_remove(
    *, workspace: Workspace, membership: Membership, actor: Membership
) -> None:
    WorkspaceMember.objects.filter(workspace=workspace, membership=membership).delete()
    audit(
        organization=workspace.organization,
        actor=actor.user,
        action="workspace.member_remove",
        target_type="workspace",
        target_id=workspace.public_id,
        details={"email": membership.user.email},
    )


@transaction.atomic
def api_key_create(*, membership: Membership, name: str = "API key") -> tuple[ApiKey, str]:
    """Returns the key row and the full key, which is shown once and never stored."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    full = f"{API_KEY_PREFIX}{prefix}_{secret}"
    key = ApiKey(membership=membership, name=name or "API key", prefix=prefix, key_hash=_hash(full))
    key.full_clean()
    key.save()
    audit(
        organization=membership.organization,
        actor=membership.user,
        action="apikey.create",
        target_type="apikey",
        target_id=key.public_id,
        details={"prefix": prefix},
    )
    return key, full


# Authenticated keys are kept in-process for a few seconds: compiling the three-table ORM query
# costs more than the rest of a light API request. A revocation, a removal or a role change
# reaches other processes within API_KEY_CACHE_SECONDS; in this process it is immediate.
_key_cache: dict[str, tuple[float, ApiKey]] = {}
_key_cache_lock = threading.Lock()


def api_key_cache_clear() -> None:
    with _key_cache_lock:
        _key_cache.clear()


def _load_api_key(prefix: str) -> ApiKey | None:
    return (
        ApiKey.objects.select_related("membership__organization", "membership__user")
        .filter(prefix=prefix, revoked_at__isnull=True)
        .first()
    )


def api_key_authenticate(raw: str) -> ApiKey | None:
    """The key (and its membership) behind a presented key, or None. Constant-time on the hash."""
    if not raw.startswith(API_KEY_PREFIX) or len(raw) > 200:
        return None
    digest = _hash(raw)
    ttl = settings.API_KEY_CACHE_SECONDS
    now_mono = time.monotonic()
    cached = _key_cache.get(digest) if ttl else None
    if cached is not None and cached[0] > now_mono:
        return cached[1]
    prefix = raw[len(API_KEY_PREFIX) :].split("_", 1)[0]
    key = _load_api_key(prefix)
    if key is None or not secrets.compare_digest(key.key_hash, digest):
        return None
    if not key.membership.user.is_active:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    if ttl:
        with _key_cache_lock:
            if len(_key_cache) > 10_000:
                _key_cache.clear()
            _key_cache[digest] = (now_mono + ttl, key)
    return key


@transaction.atomic
def api_key_revoke(*, key: ApiKey, actor: AbstractBaseUser) -> None:
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at", "updated_at"])
    api_key_cache_clear()
    audit(
        organization=key.membership.organization,
        actor=actor,
        action="apikey.revoke",
        target_type="apikey",
        target_id=key.public_id,
        details={"prefix": key.prefix},
    )


def notification_create(
    *,
    organization: Organization,
    user: AbstractBaseUser,
    title: str,
    body: str = "",
    level: str = "info",
    link: str = "",
) -> Notification:
    return Notification.objects.create(
        organization=organization, user=user, title=title[:200], body=body, level=level, link=link
    )


def organization_record_webhook(*, organization: Organization, url: str, error: str = "") -> None:
    """Remember how the last webhook delivery to `url` went (error "" = delivered), for the
    members page.

    One UPDATE of these columns only, and only while `url` is still the webhook URL:
    deliveries run in workers, concurrently with admins editing the organization."""
    now = timezone.now()
    if error:
        fields = {"webhook_failed_at": now, "webhook_error": error[:500]}
    else:
        fields = {"webhook_delivered_at": now}
    Organization.objects.filter(pk=organization.pk, webhook_url=url).update(**fields)
    for name, value in fields.items():
        setattr(organization, name, value)


@transaction.atomic
def organization_set_webhook(*, organization: Organization, url: str, actor: Membership) -> None:
    """Check the destination now, so a URL the SSRF guard will refuse is not saved silently."""
    if url:
        from traysvc.egress import DestinationRefused, EgressError, check_destination

        try:
            check_destination(url)
        except DestinationRefused as exc:
            raise ValidationError({"webhook_url": WEBHOOK_REFUSED.format(reason=exc)}) from exc
        except EgressError as exc:  # e.g. the name does not resolve
            raise ValidationError({"webhook_url": WEBHOOK_REFUSED.format(reason=exc)}) from exc
    fields = ["webhook_url", "updated_at"]
    if url != organization.webhook_url:  # the old receiver's record says nothing of the new one
        organization.webhook_delivered_at = organization.webhook_failed_at = None
        organization.webhook_error = ""
        fields += ["webhook_delivered_at", "webhook_failed_at", "webhook_error"]
    organization.webhook_url = url
    organization.full_clean()
    organization.save(update_fields=fields)
    audit(
        organization=organization,
        actor=actor.user,
        action="organization.webhook",
        details={"set": bool(url)},
    )
