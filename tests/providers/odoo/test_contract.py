"""Contract for Odoo: every sample job, mapped, is an account.move that Odoo's ORM rules (as the simulator
holds them: fields of account.move / account.move.line, command formats, field precisions; there is no
machine-readable spec, ../shared/vendor-specs/odoo/SOURCE.txt) accept, and that comes to our total by Odoo's
arithmetic, on a database with Odoo's default decimal accuracy."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer.providers.odoo import transform as t
from invoicer.providers.odoo.simulator import LINE_WRITABLE, MOVE_WRITABLE, PARTNER_WRITABLE, OdooSimulator
from tests.providers import corpus_docs
from tests.providers.odoo import odoo_options


@pytest.fixture(scope="module")
def docs():
    return corpus_docs()


def test_every_corpus_invoice_is_accepted_and_totals_ours(docs):
    sim = OdooSimulator()
    mapping = t.Mapping.from_options(odoo_options(sim), "books")
    currency = {c["name"]: c["id"] for c in sim.currencies.values()}
    wrong = {}
    for doc in docs:
        partner = sim.add_partner(**t.partner_vals(doc["customer"]))
        vals = t.move_vals(doc, partner, currency[doc["currency"]], mapping)
        assert set(vals) <= MOVE_WRITABLE and all(set(cmd[2]) <= LINE_WRITABLE for cmd in vals["invoice_line_ids"])
        assert set(t.partner_vals(doc["customer"])) <= PARTNER_WRITABLE
        move = sim.moves[sim._create_move(vals)]
        if (move["amount_total"], move["amount_tax"]) != (doc["total"], Decimal(0)):
            wrong[doc["number"]] = (str(move["amount_total"]), str(doc["total"]))
    assert wrong == {}
