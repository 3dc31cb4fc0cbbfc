"""The built-in `local` platform and channels: the embedded default that needs no vendor.

Invoices go to a ledger table (`local_ledger`) that keeps one entry per idempotency key, the way a
vendor with idempotency keys would. Email is written as .eml files and SMS as JSON lines under
var/outbox/. Options (tenants file) let a demo or a test make it behave like a real vendor:
`latency_ms` (the answer takes this long, after the effect), `fail_attempts` (the first N attempts
answer 503 before any effect), `reject` (every create is refused with this reason).
"""
from __future__ import annotations

import fcntl
import json
import os
import time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ... import db
from ...documents import write_atomic
from ...errors import Rejected, Unavailable
from ..base import Created, Message, Provider, Sent
from ..registry import register
from ..smtp.transform import to_mime
from . import transform


@register
class Local(Provider):
    slug = "local"
    capabilities = frozenset({"create_invoice", "find_invoice", "send_email", "send_sms"})
    resend_after_unknown = True  # its sends look their key up first: sending again cannot double

    def _behave(self) -> None:
        if self.options.get("reject"):
            raise Rejected(str(self.options["reject"]), status=400)
        if self.ctx.attempt <= int(self.options.get("fail_attempts", 0)):
            raise Unavailable("simulated outage (fail_attempts)", status=503)

    def _answer_delay(self) -> None:
        latency = float(self.options.get("latency_ms", 0)) / 1000
        if latency:
            time.sleep(latency)

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        with self.ctx.engine.connect() as conn:
            row = conn.execute(select(db.local_ledger).where(db.local_ledger.c.idempotency_key == key)).first()
        return Created(**transform.from_ledger(row)) if row else None

    def create_invoice(self, invoice: dict, key: str) -> Created:
        self._behave()
        body = transform.to_ledger(invoice)
        try:
            with self.ctx.engine.begin() as conn:
                conn.execute(db.local_ledger.insert().values(
                    idempotency_key=key, tenant=invoice["tenant"], reference=body["reference"],
                    number=body["number"], currency=body["currency"], total=invoice["total"], body=body))
        except IntegrityError:
            pass  # the same key again: like a vendor, answer with the entry made the first time
        found = self.find_invoice(invoice, key)
        self._answer_delay()
        return found

    def send_email(self, message: Message) -> Sent:
        self._behave()
        folder = self.ctx.var_dir / "outbox" / "email" / message.tenant
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{message.key}.eml"
        if not path.exists():
            mail = to_mime(message, {"from": f"invoices@{message.tenant}.invoicer.local",
                                     "message_id_domain": "invoicer.local"})
            write_atomic(path, bytes(mail))
        self._answer_delay()
        return Sent(external_id=message.key, detail={"file": str(path)})

    def send_sms(self, message: Message) -> Sent:
        self._behave()
        path = self.ctx.var_dir / "outbox" / "sms.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"key": message.key, "tenant": message.tenant, "to": message.to,
                           "body": message.text}, ensure_ascii=False)
        with open(path, "a+", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            if self.ctx.attempt > 1:  # an earlier try may have written it before dying: look first
                fh.seek(0)
                if any(json.loads(existing).get("key") == message.key for existing in fh if existing.strip()):
                    return Sent(external_id=message.key)
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._answer_delay()
        return Sent(external_id=message.key)
