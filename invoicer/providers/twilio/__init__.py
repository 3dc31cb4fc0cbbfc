"""Twilio Programmable Messaging: SMS through the official `twilio` library."""
