"""Xero (Accounting API 2.0): transform, adapter, webhooks and a simulator."""
