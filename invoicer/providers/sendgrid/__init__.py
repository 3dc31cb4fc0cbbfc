"""Twilio SendGrid: email through v3 Mail Send with the official `sendgrid` library."""
