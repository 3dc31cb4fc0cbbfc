"""Shared settings for the QuickBooks provider tests."""
from __future__ import annotations

REALM = "9341453050000001"
ITEMS = {"labor": "1", "material": "2", "fee": "3"}
OPTIONS = {"provider": "quickbooks", "realm_id": REALM, "items": dict(ITEMS)}
