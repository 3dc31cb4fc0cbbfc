"""Slack: the finance team's channel, a Block Kit message per invoice."""
