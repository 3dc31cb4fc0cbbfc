"""SMTP: the default email channel (smtplib, STARTTLS or implicit TLS, any mail server)."""
