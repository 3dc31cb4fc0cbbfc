"""Odoo: customer invoices (account.move) over JSON-RPC or the JSON-2 API."""
