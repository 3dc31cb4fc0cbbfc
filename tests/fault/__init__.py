"""The crash-and-outage suite: real processes, killed and cut off, and a verdict from the vendors' side.

`harness.py` starts everything (a private Redis and PostgreSQL that may be killed, the ingress,
workers, beat, the vendor simulators); `scenario.py` makes the events, the chaos and the verdict;
`run.py` is the full run (`python -m tests.fault.run --events 2000`); `test_crash_suite.py` is the
CI-sized run collected with the normal suite.
"""
