"""traysvc's egress client: the one outbound HTTP client, SSRF-guarded and pooled.

Everything that leaves the app (the runner, OAuth token exchange and refresh, health checks,
webhooks) goes through `send`; nothing else constructs an httpx client.
"""

from traysvc.egress.client import (
    EgressResponse,
    check_destination,
    close_clients,
    get_client,
    send,
)
from traysvc.egress.errors import KINDS, DestinationRefused, EgressError, safe_url
from traysvc.egress.guard import check_url, set_resolver

__all__ = [
    "KINDS",
    "DestinationRefused",
    "EgressError",
    "EgressResponse",
    "check_destination",
    "check_url",
    "close_clients",
    "get_client",
    "safe_url",
    "send",
    "set_resolver",
]
