"""Post events to an ingress, signed the Standard Webhooks way; used by `invoicer send` and the demo."""
from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import requests
from standardwebhooks import Webhook


def sign_headers(secret: str | None, msg_id: str, body: str) -> dict:
    headers = {"content-type": "application/json"}
    if secret:
        now = datetime.now(timezone.utc)
        headers.update({"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
                        "webhook-signature": Webhook(secret).sign(msg_id, now, body)})
    return headers


def post_all(events: list[dict], url: str, secret: str | None = None, concurrency: int = 8, progress=None) -> dict:
    """Post every event, retrying 5xx and connection errors; counts by answer."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=concurrency, pool_maxsize=concurrency)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0, "errors": []}

    def one(event):
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        for attempt in range(8):
            try:
                r = session.post(f"{url.rstrip('/')}/v1/events", data=body.encode(),
                                 headers=sign_headers(secret, f"msg_{event.get('id')}", body), timeout=30)
            except requests.ConnectionError:
                time.sleep(0.2 * 2 ** attempt)
                continue
            if r.status_code >= 500:
                time.sleep(float(r.headers.get("retry-after", 0.2 * 2 ** attempt)))
                continue
            return r.status_code, r.text
        return 0, "gave up after 8 tries"

    with ThreadPoolExecutor(concurrency) as pool:
        for event, (code, text) in zip(events, pool.map(one, events)):
            if code == 202:
                counts["accepted"] += 1
            elif code == 200:
                counts["duplicate"] += 1
            else:
                counts["rejected"] += 1
                counts["errors"].append(f"{event.get('id')}: {code} {text[:300]}")
            if progress:
                progress.update(1)
    return counts


def read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def send_file(path: str, url: str, secret: str | None = None, concurrency: int = 8) -> int:
    try:
        events = read_jsonl(path)
    except (OSError, json.JSONDecodeError) as exc:
        print(f"invoicer send: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    counts = post_all(events, url, secret, concurrency)
    for err in counts.pop("errors"):
        print(err, file=sys.stderr)
    print(json.dumps(counts))
    return 0 if not counts["rejected"] else 1
