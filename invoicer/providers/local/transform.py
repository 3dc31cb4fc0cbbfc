"""Pure mapping for the built-in `local` platform: canonical invoice <-> ledger entry."""
from __future__ import annotations


def to_ledger(invoice: dict) -> dict:
    return {
        "number": invoice["number"],
        "reference": f'{invoice["tenant"]}/{invoice["job"]["id"]}',
        "currency": invoice["currency"],
        "total": str(invoice["total"]),
        "lines": [{"description": line["description"], "quantity": str(line["quantity"]),
                   "unit_price": str(line["unit_price"]), "amount": str(line["amount"])}
                  for line in invoice["lines"]],
        "customer_id": invoice["customer"]["id"],
    }


def from_ledger(row) -> dict:
    return {"external_id": f"L-{row.id}", "number": row.number}
