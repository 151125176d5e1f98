"""The SSRF guard without sending: URL checks, address ranges, settings, resolution."""

from __future__ import annotations

import ipaddress
import pickle

import pytest
from django.core.exceptions import ImproperlyConfigured

from traysvc.egress import DestinationRefused, EgressError, check_destination, send
from traysvc.egress import guard as g


def _addr(host: str, description: str) -> str:
    address = ipaddress.ip_address(host)
    return g.REFUSED_ADDRESS.format(address=address, description=description)


def _name(host: str, address: str, description: str) -> str:
    address_obj = ipaddress.ip_address(address)
    return g.REFUSED_NAME.format(host=host, address=address_obj, description=description)


def _embedded(form: str, ipv4: str, description: str) -> str:
    return g.EMBEDDED.format(form=form, ipv4=ipv4, description=description)


def _odd(host: str, address: str) -> str:
    return g.REFUSED_NONCANONICAL_IPV4.format(host=host, address=address)


DNS = {
    "localhost": ["127.0.0.1", "::1"],
    "mixed.test": ["93.184.215.14", "10.0.0.5"],
    "private.test": ["192.168.0.10"],
    "v6private.test": ["fd12:3456::1"],
    "mapped.test": ["::ffff:10.1.2.3"],
    "metadata.test": ["169.254.169.254"],
}

SSRF_TABLE = [
    ("http://127.0.0.1/", _addr("127.0.0.1", g.LOOPBACK)),
    ("http://localhost/", _name("localhost", "127.0.0.1", g.LOOPBACK)),
    ("http://127.1/", _odd("127.1", "127.0.0.1")),
    ("http://2130706433/", _odd("2130706433", "127.0.0.1")),
    ("http://0x7f000001/", _odd("0x7f000001", "127.0.0.1")),
    ("http://0x7f.0.0.1/", _odd("0x7f.0.0.1", "127.0.0.1")),
    ("http://0177.0.0.1/", _odd("0177.0.0.1", "127.0.0.1")),
    ("http://127.0.0.1./", _odd("127.0.0.1.", "127.0.0.1")),
    ("http://0/", _odd("0", "0.0.0.0")),  # noqa: S104 (an address, not a bind)
    ("http://0.0.0.0/", _addr("0.0.0.0", g.UNSPECIFIED_V4)),  # noqa: S104
    ("http://[::1]/", _addr("::1", g.LOOPBACK_V6)),
    ("http://[::]/", _addr("::", g.UNSPECIFIED_V6)),
    (
        "http://[::ffff:127.0.0.1]/",
        _addr("::ffff:127.0.0.1", _embedded(g.FORM_MAPPED, "127.0.0.1", g.LOOPBACK)),
    ),
    (
        "http://[::ffff:7f00:1]/",
        _addr("::ffff:7f00:1", _embedded(g.FORM_MAPPED, "127.0.0.1", g.LOOPBACK)),
    ),
    (
        "http://[::127.0.0.1]/",
        _addr("::127.0.0.1", _embedded(g.FORM_COMPAT, "127.0.0.1", g.LOOPBACK)),
    ),
    ("http://10.0.0.5/", _addr("10.0.0.5", g.PRIVATE)),
    ("http://172.16.3.4/", _addr("172.16.3.4", g.PRIVATE)),
    ("http://172.31.255.255/", _addr("172.31.255.255", g.PRIVATE)),
    ("http://192.168.1.1/", _addr("192.168.1.1", g.PRIVATE)),
    ("http://169.254.169.254/latest/meta-data/", _addr("169.254.169.254", g.METADATA_V4)),
    ("http://169.254.10.1/", _addr("169.254.10.1", g.LINK_LOCAL)),
    ("http://[fd00:ec2::254]/", _addr("fd00:ec2::254", g.METADATA_V6)),
    ("http://100.64.0.1/", _addr("100.64.0.1", g.CGNAT)),
    ("http://224.0.0.1/", _addr("224.0.0.1", g.MULTICAST)),
    ("http://255.255.255.255/", _addr("255.255.255.255", g.BROADCAST)),
    ("http://240.0.0.1/", _addr("240.0.0.1", g.RESERVED_V4)),
    ("http://[fe80::1]/", _addr("fe80::1", g.LINK_LOCAL_V6)),
    ("http://[fc00::1]/", _addr("fc00::1", g.UNIQUE_LOCAL)),
    ("http://[fec0::1]/", _addr("fec0::1", g.SITE_LOCAL_V6)),
    ("http://[ff02::1]/", _addr("ff02::1", g.MULTICAST_V6)),
    ("http://198.18.0.1/", _addr("198.18.0.1", g.BENCHMARKING_V4)),
    ("http://192.0.2.10/", _addr("192.0.2.10", g.DOCUMENTATION_V4)),
    ("http://[2001:db8::1]/", _addr("2001:db8::1", g.DOCUMENTATION_V6)),
    (
        "http://[64:ff9b::7f00:1]/",
        _addr("64:ff9b::7f00:1", _embedded(g.FORM_NAT64, "127.0.0.1", g.LOOPBACK)),
    ),
    (
        "http://[64:ff9b::a9fe:a9fe]/",
        _addr("64:ff9b::a9fe:a9fe", _embedded(g.FORM_NAT64, "169.254.169.254", g.METADATA_V4)),
    ),
    (
        "http://[2002:7f00:1::]/",
        _addr("2002:7f00:1::", _embedded(g.FORM_6TO4, "127.0.0.1", g.LOOPBACK)),
    ),
    (
        "http://[::ffff:169.254.169.254]/",
        _addr("::ffff:a9fe:a9fe", _embedded(g.FORM_MAPPED, "169.254.169.254", g.METADATA_V4)),
    ),
    ("http://[2001::1]/", _addr("2001::1", g.TEREDO)),
    ("http://[5f00::1]/", _addr("5f00::1", g.RESERVED_V6)),
    ("http://mixed.test/", _name("mixed.test", "10.0.0.5", g.PRIVATE)),
    ("http://private.test/", _name("private.test", "192.168.0.10", g.PRIVATE)),
    ("http://v6private.test/", _name("v6private.test", "fd12:3456::1", g.UNIQUE_LOCAL)),
    (
        "http://mapped.test/",
        _name("mapped.test", "::ffff:10.1.2.3", _embedded(g.FORM_MAPPED, "10.1.2.3", g.PRIVATE)),
    ),
    ("https://metadata.test/", _name("metadata.test", "169.254.169.254", g.METADATA_V4)),
    ("file:///etc/passwd", g.REFUSED_SCHEME.format(scheme="file")),
    ("gopher://example.com:70/_SLAVEOF", g.REFUSED_SCHEME.format(scheme="gopher")),
    ("ftp://example.com/", g.REFUSED_SCHEME.format(scheme="ftp")),
    ("http://user:pass@example.com/", g.REFUSED_CREDENTIALS),
    ("http://user@example.com/", g.REFUSED_CREDENTIALS),
]


@pytest.mark.parametrize(("url", "message"), SSRF_TABLE, ids=[row[0] for row in SSRF_TABLE])
def test_ssrf_table_is_refused_with_its_reason(url, message, fake_dns, no_allowlist):
    fake_dns.records.update(DNS)
    with pytest.raises(DestinationRefused) as caught:
        check_destination(url)
    assert caught.value.kind == "refused"
    assert str(caught.value) == message


def test_private_refusal_reads_as_documented(no_allowlist):
    with pytest.raises(DestinationRefused) as caught:
        check_destination("http://10.0.0.5/")
    assert str(caught.value) == (
        "refused: 10.0.0.5 is a private address (RFC 1918); "
        "set HTTPCLIENT_ALLOW_NETWORKS to allow it"
    )


def test_odd_ipv4_spelling_says_it_is_refused_outright(no_allowlist):
    with pytest.raises(DestinationRefused) as caught:
        check_destination("http://2130706433:8080/x")
    assert str(caught.value) == (
        "refused: 2130706433 is a non-canonical spelling of the IPv4 address 127.0.0.1; such "
        "hosts are refused outright, write 127.0.0.1 if you mean it"
    )


@pytest.mark.parametrize("host", ["example.com", "1e100.net", "cafe.be", "127.0.0.1", "10.0.0.5"])
def test_names_and_canonical_addresses_are_not_odd_spellings(host):
    assert g.noncanonical_ipv4(host) is None


def test_url_without_host_is_invalid(no_allowlist):
    with pytest.raises(DestinationRefused) as caught:
        check_destination("http:///path")
    assert caught.value.kind == "invalid_url"
    assert str(caught.value) == g.INVALID_URL_NO_HOST


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_pass(address):
    assert g.refusal_reason(ipaddress.ip_address(address)) is None


def test_public_name_passes_and_literals_skip_the_resolver(fake_dns, no_allowlist):
    fake_dns.records["api.test"] = ["93.184.215.14", "2606:4700::1111"]
    check_destination("https://api.test/v1")
    check_destination("https://93.184.215.14/v1")
    assert fake_dns.calls == [("api.test", 443)]


def test_unresolvable_name_is_a_connect_error(fake_dns, no_allowlist):
    with pytest.raises(EgressError) as caught:
        check_destination("https://nowhere.test/x?token=secret")
    assert caught.value.kind == "connect"
    assert str(caught.value) == g.RESOLVE_FAILED.format(host="nowhere.test")
    assert caught.value.url == "https://nowhere.test:443/x"


def test_allowed_network_opens_only_that_network():
    networks = g.parse_networks(("127.0.0.0/8",))
    assert g.refusal_reason(ipaddress.ip_address("127.0.0.1"), networks) is None
    assert g.refusal_reason(ipaddress.ip_address("::ffff:127.0.0.1"), networks) is None
    assert g.refusal_reason(ipaddress.ip_address("10.0.0.5"), networks) == g.PRIVATE
    assert g.refusal_reason(ipaddress.ip_address("::1"), networks) == g.LOOPBACK_V6


def test_allow_networks_setting_is_read_at_call_time(settings):
    settings.HTTPCLIENT_ALLOW_NETWORKS = []
    with pytest.raises(DestinationRefused):
        check_destination("http://127.0.0.1:8000/")
    settings.HTTPCLIENT_ALLOW_NETWORKS = ["127.0.0.0/8", "fd00::/8"]
    check_destination("http://127.0.0.1:8000/")
    check_destination("http://[fd00::1]/")
    with pytest.raises(DestinationRefused):
        check_destination("http://10.0.0.1/")


@pytest.mark.parametrize("value", ["nonsense", "10.0.0.5/8", "300.0.0.0/8", "127.0.0.0/33"])
def test_bad_allow_networks_entry_is_improperly_configured(settings, value):
    settings.HTTPCLIENT_ALLOW_NETWORKS = ["127.0.0.0/8", value]
    with pytest.raises(ImproperlyConfigured) as caught:
        check_destination("http://127.0.0.1/")
    assert str(caught.value) == g.BAD_NETWORK.format(value=value)


def test_allow_origins_exempts_exactly_that_origin(no_allowlist):
    origins = frozenset({("http", "127.0.0.1", 8000)})
    check_destination("http://127.0.0.1:8000/o/demo/", allow_origins=origins)
    for url in ("http://127.0.0.1:8001/", "https://127.0.0.1:8000/", "http://127.0.0.2:8000/"):
        with pytest.raises(DestinationRefused):
            check_destination(url, allow_origins=origins)


def test_refusal_from_send_names_no_query_string(no_allowlist):
    with pytest.raises(DestinationRefused) as caught:
        send("GET", "http://10.0.0.5/path?access_token=s3cret", headers={"X-Key": "k3y"})
    assert caught.value.url == "http://10.0.0.5:80/path"
    assert "s3cret" not in str(caught.value) and "k3y" not in str(caught.value)


def test_egress_error_survives_pickling():
    error = DestinationRefused("refused: x", url="http://x:80/")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own object)
    assert (type(copy), str(copy), copy.kind, copy.url) == (
        DestinationRefused,
        "refused: x",
        "refused",
        "http://x:80/",
    )


def test_unknown_error_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown egress error kind"):
        EgressError("x", "oops")
