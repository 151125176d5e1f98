"""A bad HTTPCLIENT_ALLOW_NETWORKS entry stops startup with the guard's own words (traysvc.E002),
instead of failing the first outbound call as an "internal" error."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.core.checks import registry
from django.core.exceptions import ImproperlyConfigured

from traysvc.checks import NETWORKS_HINT, check_egress_allow_networks
from traysvc.egress.guard import BAD_NETWORK


@pytest.mark.parametrize("value", [["127.0.0.1/8"], ["10.0.0.0/8", "not-a-network"], "fd00::/8,x"])
def test_a_bad_network_is_system_check_error_e002(settings, value) -> None:  # type: ignore[no-untyped-def]
    settings.HTTPCLIENT_ALLOW_NETWORKS = value
    [error] = check_egress_allow_networks()
    assert error.id == "traysvc.E002" and error.is_serious()
    bad = {"127.0.0.1/8", "not-a-network", "x"}
    shown = next(v for v in (value if isinstance(value, list) else value.split(",")) if v in bad)
    assert error.msg == BAD_NETWORK.format(value=shown)
    assert error.hint == NETWORKS_HINT


@pytest.mark.parametrize(
    "value", [[], ["127.0.0.0/8"], ["127.0.0.1/32", "fd00::/8"], "10.0.0.0/8, fd00::/8"]
)
def test_good_networks_pass(settings, value) -> None:  # type: ignore[no-untyped-def]
    settings.HTTPCLIENT_ALLOW_NETWORKS = value
    assert check_egress_allow_networks() == []


def test_the_check_is_registered(settings) -> None:  # type: ignore[no-untyped-def]
    settings.HTTPCLIENT_ALLOW_NETWORKS = ["127.0.0.1/8"]
    found = [m for m in registry.run_checks(tags=["security"]) if m.id == "traysvc.E002"]
    assert len(found) == 1


def test_startup_refuses_a_bad_network_when_not_debug(settings) -> None:  # type: ignore[no-untyped-def]
    config = apps.get_app_config("traysvc")
    settings.HTTPCLIENT_ALLOW_NETWORKS = ["127.0.0.1/8"]
    settings.DEBUG = False
    with pytest.raises(ImproperlyConfigured) as info:
        config.ready()
    assert str(info.value) == BAD_NETWORK.format(value="127.0.0.1/8")
    settings.DEBUG = True  # the dev server starts and `manage.py check` reports it instead
    config.ready()
    settings.DEBUG = False
    settings.HTTPCLIENT_ALLOW_NETWORKS = ["127.0.0.0/8"]
    config.ready()
