"""QuickBooks Online (Accounting API v3): transform.py maps, adapter.py talks, simulator.py stands in for tests."""
