"""Helpers for the Salesforce provider tests: canonical invoices and tenant options."""
from __future__ import annotations

from tests.providers.hubspot import make_doc  # noqa: F401 -- the same canonical invoice (251.10 USD)

ENTRIES = {"labor": "01uSIMLABOR", "material": "01uSIMMATERIAL", "fee": "01uSIMFEE", "discount": "01uSIMDISCOUNT",
           "tax": "01uSIMTAX"}


def options(url: str | None = None, **extra) -> dict:
    out = {"provider": "salesforce"}
    if url:
        out.update(login_url=url)
    out.update(extra)
    return out


def order_options(url: str | None = None, **extra) -> dict:
    return options(url, **{"object": "order", "pricebook_id": "01sSIMPRICEBOOK",
                           "pricebook_entries": dict(ENTRIES), **extra})


def workorder_options(url: str | None = None, **extra) -> dict:
    return options(url, **{"object": "workorder", "pricebook_id": "01sSIMPRICEBOOK",
                           "pricebook_entries": dict(ENTRIES), **extra})
