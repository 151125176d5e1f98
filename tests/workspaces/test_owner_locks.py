"""An organization never loses its last owner: role changes and removals lock the owner
memberships and judge everyone's role as stored now, not as the caller's copy remembers it."""

from __future__ import annotations

import os
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from workspaces.models import Membership, Role
from workspaces.services import (
    LAST_OWNER,
    ONLY_OWNER_GRANTS_OWNER,
    membership_remove,
    membership_set_role,
)


@pytest.fixture
def two_owners(db, actors):  # type: ignore[no-untyped-def]
    """Org A with two owners: the owner and the admin (promoted)."""
    membership_set_role(membership=actors.admin_m, role=Role.OWNER, actor=actors.owner_m)
    return actors.owner_m, Membership.objects.get(pk=actors.admin_m.pk)


def test_a_demoted_owner_acting_on_a_stale_copy_cannot_grant_ownership(two_owners, actors) -> None:  # type: ignore[no-untyped-def]
    first, second = two_owners
    stale_first = Membership.objects.get(pk=first.pk)
    membership_set_role(membership=first, role=Role.ADMIN, actor=second)
    assert stale_first.role == Role.OWNER  # the copy a concurrent request would still hold
    with pytest.raises(ValidationError) as info:
        membership_set_role(membership=actors.member_m, role=Role.OWNER, actor=stale_first)
    assert info.value.message_dict == {"role": [ONLY_OWNER_GRANTS_OWNER]}
    assert Membership.objects.get(pk=actors.member_m.pk).role == Role.MEMBER


def test_a_demoted_owner_acting_on_a_stale_copy_cannot_remove_an_owner(two_owners) -> None:  # type: ignore[no-untyped-def]
    first, second = two_owners
    stale_first = Membership.objects.get(pk=first.pk)
    membership_set_role(membership=first, role=Role.ADMIN, actor=second)
    with pytest.raises(ValidationError) as info:
        membership_remove(membership=second, actor=stale_first)
    assert info.value.messages == [ONLY_OWNER_GRANTS_OWNER]
    assert Membership.objects.filter(pk=second.pk, role=Role.OWNER).exists()


def test_demoting_each_other_one_after_the_other_keeps_an_owner(two_owners) -> None:  # type: ignore[no-untyped-def]
    first, second = two_owners
    stale_second = Membership.objects.get(pk=second.pk)
    membership_set_role(membership=second, role=Role.ADMIN, actor=first)
    with pytest.raises(ValidationError):
        membership_set_role(membership=first, role=Role.ADMIN, actor=stale_second)
    assert list(Membership.objects.filter(role=Role.OWNER, organization=first.organization)) == [
        first
    ]


def test_the_last_owner_cannot_step_down_even_with_a_stale_role(actors) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as info:
        membership_set_role(membership=actors.owner_m, role=Role.ADMIN, actor=actors.owner_m)
    assert info.value.messages == [LAST_OWNER]


@pytest.mark.postgres
@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
    reason="needs PostgreSQL (DATABASE_URL=postgres://...): SQLite serialises writes anyway",
)
def test_two_owners_demoting_each_other_at_once_leave_one_owner(transactional_db, actors) -> None:  # type: ignore[no-untyped-def]
    membership_set_role(membership=actors.admin_m, role=Role.OWNER, actor=actors.owner_m)
    first = Membership.objects.get(pk=actors.owner_m.pk)
    second = Membership.objects.get(pk=actors.admin_m.pk)
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def demote(key: str, membership: Membership, actor: Membership) -> None:
        try:
            barrier.wait(5)
            results[key] = membership_set_role(membership=membership, role=Role.ADMIN, actor=actor)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            results[key] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=demote, args=("a", first, second)),
        threading.Thread(target=demote, args=("b", second, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    failures = [r for r in results.values() if isinstance(r, ValidationError)]
    assert len(failures) == 1, results
    assert Membership.objects.filter(organization=actors.org_a, role=Role.OWNER).count() == 1
