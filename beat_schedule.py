"""Celery beat's schedule. Beat only selects what is due and fans it out; the work is in tasks."""
from __future__ import annotations


def schedule(cfg) -> dict:
    return {
        "sweep": {
            "task": "invoicer.beat.sweep",
            "schedule": cfg.sweep_interval,
            "options": {"queue": "beat", "expires": cfg.sweep_interval},
        },
        # reminders due by now, made into deliveries exactly once (invoicer/reminders.py)
        "reminders": {
            "task": "invoicer.beat.reminders",
            "schedule": cfg.reminder_interval,
            "options": {"queue": "beat", "expires": cfg.reminder_interval},
        },
        # payment status asked of platforms that send no webhooks (invoicer/payments.py)
        "payments": {
            "task": "invoicer.beat.payments",
            "schedule": cfg.payment_poll_every,
            "options": {"queue": "beat", "expires": cfg.payment_poll_every},
        },
    }
