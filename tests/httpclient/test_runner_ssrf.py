"""The SSRF guard as the runner meets it: each trick refused with its reason, as a 422 result
with a CallLog row and an audit event, before any connection (HTTPCLIENT_ALLOW_NETWORKS empty)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from httpclient.models import CallLog
from httpclient.runner import Call, execute
from tests.httpclient.conftest import SECRET_TOKEN, make_auth, make_service
from traysvc import egress
from traysvc.egress import guard
from workspaces.models import AuditEvent

pytestmark = pytest.mark.django_db

FAKE_DNS = {
    "internal.test": ["10.1.2.3"],
    "rebind.test": ["93.184.216.34", "127.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "mapped.test": ["::ffff:192.168.0.1"],
}

SSRF_TABLE = [
    ("http://127.0.0.1:8001", guard.LOOPBACK),
    ("http://127.10.20.30", guard.LOOPBACK),
    ("http://2130706433", "non-canonical spelling of the IPv4 address 127.0.0.1"),
    ("http://0x7f000001", "non-canonical spelling of the IPv4 address 127.0.0.1"),
    ("http://0177.0.0.1", "non-canonical spelling of the IPv4 address 127.0.0.1"),
    ("http://127.1", "non-canonical spelling of the IPv4 address 127.0.0.1"),
    ("http://0.0.0.0", guard.UNSPECIFIED_V4),
    ("http://[::1]", guard.LOOPBACK_V6),
    ("http://[::]", guard.UNSPECIFIED_V6),
    ("http://[::ffff:127.0.0.1]", guard.FORM_MAPPED),
    ("http://[::ffff:a9fe:a9fe]", guard.METADATA_V4),
    ("http://[::127.0.0.1]", guard.FORM_COMPAT),
    ("http://[64:ff9b::a00:1]", guard.FORM_NAT64),
    ("http://[2002:a00:1::]", guard.FORM_6TO4),
    ("http://10.0.0.5", guard.PRIVATE),
    ("http://172.16.3.4", guard.PRIVATE),
    ("http://192.168.1.1", guard.PRIVATE),
    ("http://169.254.169.254", guard.METADATA_V4),
    ("http://169.254.10.10", guard.LINK_LOCAL),
    ("http://100.64.0.1", guard.CGNAT),
    ("http://224.0.0.1", guard.MULTICAST),
    ("http://240.0.0.1", guard.RESERVED_V4),
    ("http://255.255.255.255", guard.BROADCAST),
    ("http://[fc00::1]", guard.UNIQUE_LOCAL),
    ("http://[fe80::1]", guard.LINK_LOCAL_V6),
    ("http://[fd00:ec2::254]", guard.METADATA_V6),
    ("http://internal.test", "internal.test resolves to 10.1.2.3"),
    ("http://rebind.test", "rebind.test resolves to 127.0.0.1"),
    ("http://metadata.test", guard.METADATA_V4),
    ("http://mapped.test", guard.FORM_MAPPED),
]


@pytest.fixture
def fake_dns(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    settings.HTTPCLIENT_ALLOW_NETWORKS = []
    settings.TRAYSVC_SANDBOX = False

    def resolve(host: str, port: int) -> list[str]:
        if host not in FAKE_DNS:
            raise OSError("no such name")
        return FAKE_DNS[host]

    previous = egress.set_resolver(resolve)
    yield
    egress.set_resolver(previous)


def test_the_table_is_big_enough() -> None:
    assert len(SSRF_TABLE) >= 25


@pytest.mark.parametrize(("base_url", "reason"), SSRF_TABLE, ids=[u for u, _ in SSRF_TABLE])
def test_destination_is_refused_with_its_reason(actors, fake_dns, base_url, reason) -> None:  # type: ignore[no-untyped-def]
    service = make_service(actors.member_m, base_url=base_url, name="Target")
    auth = make_auth(actors.member_m, service, {"token": SECRET_TOKEN})
    result = execute(Call(membership=actors.member_m, service=service.public_id,
                          authentication=auth.public_id, path=f"/x?token={SECRET_TOKEN}"))  # fmt: skip
    assert result.error_kind == "refused" and result.http_status == 422, result.error
    assert reason in result.error
    assert result.error.startswith("refused: ")
    row = CallLog.objects.get(public_id=result.call_id)
    assert row.error == result.error and SECRET_TOKEN not in row.url
    assert AuditEvent.objects.filter(
        action="call.refused", target_id=str(service.public_id)
    ).exists()
