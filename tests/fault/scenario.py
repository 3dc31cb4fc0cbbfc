"""The crash suite's run: the events (seeded), posting them, the chaos, and the verdict read from the
vendor simulators' own records rather than from our database.

The randomness (which events are duplicated or paired, the moments of the faults, which worker dies)
comes from one seeded generator; when each fault lands depends on the machine, so the verdict is
about outcomes only, never about time.
"""
from __future__ import annotations

import copy
import json
import random
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

from .harness import Cluster, wait_until

SHARED = Path(__file__).resolve().parents[3] / "shared"
EVENTS = SHARED / "events" / "jobs-300.jsonl"
TRIGGERS = ("job.completed", "job.signed")


# ---------------------------------------------------------------- events

@dataclass
class Plan:
    units: list[list[dict]]  # posted in any order, concurrently; the events of one unit in order
    unique: list[dict]
    duplicates: int
    pairs: int


def base_events(path: Path = EVENTS) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def make_events(total: int, rng: random.Random, base: list[dict] | None = None, duplicate_share: float = 0.2,
                pair_share: float = 0.05) -> Plan:
    """`total` posts: 20% of them repeat an event already in the run (same id, same body), and 5% of
    the distinct events are out-of-order pairs (`job.signed` posted before the `job.completed` of
    the same job, which happened earlier). Beyond 300 the jobs of jobs-300.jsonl come again under new
    job and event ids (same customers: a customer with several jobs)."""
    base = base or base_events()
    duplicates = round(total * duplicate_share)
    distinct = total - duplicates
    pairs = round(distinct * pair_share / 2)
    originals = []
    for i in range(distinct - pairs):
        ev = copy.deepcopy(base[i % len(base)])
        round_ = i // len(base)
        if round_:
            ev["id"] = f"{ev['id']}-r{round_}"
            ev["job"]["id"] = f"{ev['job']['id']}-r{round_}"
            ev["job"]["number"] = f"{ev['job']['number']}-{round_}"
        originals.append(ev)
    completed = [ev for ev in originals if ev["type"] == "job.completed"]
    paired = rng.sample(completed, pairs)
    units: list[list[dict]] = []
    twins = []
    for ev in originals:
        if any(ev is p for p in paired):
            signed = copy.deepcopy(ev)
            signed["type"] = "job.signed"
            signed["id"] = f"{ev['id']}-signed"
            signed["occurred_at"] = _later(ev["occurred_at"], minutes=10)
            signed["job"]["signature"] = {"signed_by": ev["customer"]["name"],
                                          "signed_at": _later(ev["occurred_at"], minutes=9)}
            twins.append(signed)
            units.append([signed, ev])  # the later event first: out of order
        else:
            units.append([ev])
    unique = originals + twins
    units += [[copy.deepcopy(ev)] for ev in rng.choices(unique, k=duplicates)]
    rng.shuffle(units)
    return Plan(units, unique, duplicates, pairs)


def _later(stamp: str, minutes: int) -> str:
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(minutes=minutes)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- posting

@dataclass
class Posted:
    answers: Counter = field(default_factory=Counter)  # event id -> 202 answers
    duplicates: int = 0  # 200 {"duplicate": true}
    outages: int = 0  # answers that were not 2xx, or no answer, retried
    rejected: list[str] = field(default_factory=list)
    settled: int = 0  # events posted and answered (accepted, duplicate or rejected)

    def accepted(self) -> set[str]:
        return set(self.answers)


def post_all(cluster: Cluster, plan: Plan, out: Posted, concurrency: int = 8, pace: float = 0.0,
             patience: float = 180) -> Posted:
    """Post every unit concurrently, each sender waiting `pace` seconds between its units (so the
    outages find events arriving). A sender that gets no answer or a 5xx tries again (as a platform's
    webhook sender would), so an outage of ours never loses an event the sender meant to give us."""
    import requests

    lock = threading.Lock()
    local = threading.local()
    url = f"{cluster.url}/v1/events"

    def post(ev: dict) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        body = json.dumps(ev, ensure_ascii=False).encode()
        deadline = time.monotonic() + patience
        while True:
            try:
                r = session.post(url, data=body, headers={"content-type": "application/json"}, timeout=15)
                if r.status_code == 202:
                    with lock:
                        out.answers[ev["id"]] += 1
                    return
                if r.status_code == 200 and r.json().get("duplicate"):
                    with lock:
                        out.duplicates += 1
                        out.answers.setdefault(ev["id"], 0)
                    return
                if r.status_code < 500:
                    with lock:
                        out.rejected.append(f"{ev['id']}: {r.status_code} {r.text[:200]}")
                    return
            except requests.RequestException:
                session.close()
                local.session = session = requests.Session()
            with lock:
                out.outages += 1
            if time.monotonic() > deadline:
                with lock:
                    out.rejected.append(f"{ev['id']}: no 2xx answer within {patience:.0f} s")
                return
            time.sleep(0.3)

    def unit(events: list[dict]) -> None:
        for ev in events:
            post(ev)
            with lock:
                out.settled += 1
        time.sleep(pace)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(unit, plan.units))
    return out


# ---------------------------------------------------------------- chaos

SIM_FAULTS = {
    # QuickBooks takes the invoice, then the connection drops before the answer (outcome unknown)
    "quickbooks drops a create": lambda c: [s.fault_on("POST", r"/v3/company/[^/]+/invoice", "drop")
                                            for s in c.sims("quickbooks")],
    "quickbooks answers 5xx": lambda c: [s.inject(*["500"] * 5) for s in c.sims("quickbooks")],
    "stripe answers 429": lambda c: c.sim("stripe").inject(*["429"] * 8),
    "stripe answers 5xx": lambda c: c.sim("stripe").inject(*["500"] * 8),
    "stripe drops a create": lambda c: c.sim("stripe").fault_on("POST", r"/v1/invoices", "drop"),
    # the answer comes only after the task's time limit: the worker gives up without knowing
    "stripe stalls a create": lambda c: c.sim("stripe").fault_on("POST", r"/v1/invoices", "stall"),
    "twilio drops a send": lambda c: c.sim("twilio").fault_on("POST", r"/2010-04-01/Accounts/\w+/Messages\.json",
                                                              "drop"),
    "sendgrid answers 429": lambda c: c.sim("sendgrid").inject(*["429"] * 4),
    "sendgrid answers 5xx": lambda c: c.sim("sendgrid").inject(*["500"] * 4),
}


@dataclass
class Chaos:
    """Faults at seeded moments of the run's progress (share of the expected platform invoices made)."""
    cluster: Cluster
    rng: random.Random
    kills: int
    redis_restarts: int
    pg_restarts: int
    sim_rounds: int = 1
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    restarts: Counter = field(default_factory=Counter)

    def schedule(self) -> list[tuple[str, float, str]]:
        """(clock, threshold, action). The first restart of each server comes while events arrive
        (clock "posted": share of the posts answered), so the ingress meets the outage too; the rest,
        the kills and the vendor faults while the work is done (clock "invoiced")."""
        rng = self.rng
        out = [("invoiced", rng.uniform(0.05, 0.8), f"kill {rng.choice(sorted(self.cluster.worker_specs))}")
               for _ in range(self.kills)]
        for server, count in (("redis", self.redis_restarts), ("postgresql", self.pg_restarts)):
            out += [("posted" if i == 0 else "invoiced", rng.uniform(0.2, 0.7), f"restart {server}")
                    for i in range(count)]
        out += [("invoiced", rng.uniform(0.05, 0.8), a) for a in list(SIM_FAULTS) * self.sim_rounds]
        return sorted((clock, round(t, 3), a) for clock, t, a in out)

    def act(self, action: str) -> None:
        c = self.cluster
        if action.startswith("kill "):
            c.kill_worker(action.removeprefix("kill "))
        elif action == "restart redis":
            c.redis.restart()
            self.restarts["redis"] += 1
        elif action == "restart postgresql":
            c.pg.restart()
            self.restarts["postgresql"] += 1
        else:
            SIM_FAULTS[action](c)

    def run(self, clocks: dict, stop: threading.Event) -> None:
        pending = self.schedule()
        while pending and not stop.is_set():
            due = [p for p in pending if clocks[p[0]]() >= p[1]]
            if not due:
                time.sleep(0.1)
                continue
            clock, threshold, action = due[0]
            pending.remove(due[0])
            try:
                self.act(action)
                self.done.append(f"{threshold:.2f} of {clock}: {action}")
            except Exception as exc:  # the harness failed to inflict it: say so, never hide it
                self.failed.append(f"{action}: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------- expectations and the verdict

def expected(plan: Plan, tenants: dict) -> dict[tuple[str, str], dict]:
    """(tenant, job id) -> what the vendors must end up holding for it, from the events and the money rules."""
    from invoicer import money, notify
    from invoicer.models import Event

    out = {}
    for ev in plan.unique:
        if ev["type"] not in TRIGGERS:
            continue
        key = (ev["tenant"], ev["job"]["id"])
        if key in out:
            continue
        event = Event.model_validate(ev)
        _, _, totals = money.price(event.job)
        tenant = tenants[ev["tenant"]]
        doc = {"customer": ev["customer"], "service_address": ev["job"].get("service_address")}
        email, _ = notify.email_address(ev["customer"].get("email"))
        phone, _ = notify.phone_number(ev["customer"].get("phone"),
                                       notify.region(doc, SimpleNamespace(locale=tenant.get("locale", "en_US"))))
        out[key] = {"total": totals.total, "currency": event.job.currency, "platforms": sorted(tenant["platforms"]),
                    "email": email, "sms": phone}
    return out


def platform_records(cluster: Cluster) -> dict[str, list[dict]]:
    """Every invoice each simulator holds, as (tenant, job, our number, total)."""
    from invoicer.providers.stripe.transform import from_stripe

    st = cluster.sim("stripe")
    out = {"quickbooks": [], "stripe": []}
    for qb in cluster.sims("quickbooks"):
        with qb.state:
            invoices = list(qb.invoices.values())
        for inv in invoices:
            m = re.search(r"invoicer:([a-z0-9-]+)/(\S+)", inv.get("PrivateNote") or "")
            out["quickbooks"].append({"tenant": m and m.group(1), "job": m and m.group(2), "number": inv["DocNumber"],
                                      "total": Decimal(str(inv["TotalAmt"])),
                                      "currency": (inv.get("CurrencyRef") or {}).get("value")})
    with st._state:
        for inv in st.invoices.values():
            meta = inv.get("metadata") or {}
            total = st._totals(inv)["total"]
            out["stripe"].append({"tenant": meta.get("invoicer_tenant"), "job": meta.get("invoicer_job"),
                                  "number": meta.get("invoicer_number"), "status": inv.get("status"),
                                  "total": from_stripe(total, inv["currency"]), "currency": inv["currency"].upper()})
    return out


def message_records(cluster: Cluster) -> dict[str, list[dict]]:
    """Every email and SMS the simulators took: (recipient, our invoice number, message kind)."""
    sg, tw = cluster.sim("sendgrid"), cluster.sim("twilio")
    number = re.compile(r"\b([A-Z]+-\d+)\b")
    with sg.lock:
        emails = [{"to": m["personalizations"][0]["to"][0]["email"],
                   "number": (number.search(m.get("subject") or "") or [None, None])[1],
                   "kind": (m.get("categories") or [None, None])[1]} for m in sg.messages.values()]
    with tw.lock:
        sms = [{"to": m["to"], "number": (number.search(m["body"]) or [None, None])[1],
                "kind": "reminder" if m["body"].startswith("Reminder") else "invoice"} for m in tw.messages.values()]
    return {"email": emails, "sms": sms}


@dataclass
class Verdict:
    figures: dict
    problems: list[str]
    notes: list[str] = field(default_factory=list)  # dead letters and messages held, with their reasons

    def text(self) -> str:
        width = max(len(k) for k in self.figures)
        lines = [f"{k:<{width}}  {v}" for k, v in self.figures.items()]
        if self.notes:
            lines += ["", "dead letters and messages held for review:"] + [f"  - {n}" for n in self.notes[:40]]
        if self.problems:
            lines += ["", f"PROBLEMS ({len(self.problems)}):"] + [f"  - {p}" for p in self.problems[:40]]
        return "\n".join(lines)


def dead_letters(cluster: Cluster) -> list[dict]:
    """Our own record of what was given up (the dead-letter queue, and messages held for a person)."""
    import sqlalchemy as sa

    with cluster.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT d.id, d.kind, d.target, d.status, d.last_error, d.detail, i.tenant, i.number, j.job_id "
            "FROM deliveries d JOIN invoices i ON i.id = d.invoice_id JOIN jobs j ON j.id = i.job_pk "
            "WHERE d.status IN ('dead', 'review')")).all()
    return [dict(r._mapping) for r in rows]


def retried(cluster: Cluster) -> int:
    """Attempts that failed and were retried (our record: the vendors do not count them)."""
    import sqlalchemy as sa

    with cluster.engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM attempts WHERE outcome = 'retry'")).scalar_one()


def verdict(cluster: Cluster, plan: Plan, posted: Posted, chaos: Chaos, elapsed: float) -> Verdict:
    want = expected(plan, cluster.tenants)
    records = platform_records(cluster)
    messages = message_records(cluster)
    dead = dead_letters(cluster)
    problems: list[str] = []

    unique_ids = {ev["id"] for ev in plan.unique}
    missing_posts = unique_ids - posted.accepted()
    problems += [f"event {i} never accepted" for i in sorted(missing_posts)][:10]
    problems += [f"event {i} answered 202 {n} times" for i, n in posted.answers.items() if n > 1]
    problems += [f"rejected: {r}" for r in posted.rejected]

    dead_by = {(d["tenant"], d["job_id"], d["kind"], d["target"]) for d in dead}
    problems += [f"dead letter {d['id']} ({d['kind']} {d['target']}) has no reason" for d in dead
                 if not (d["last_error"] or (d["detail"] or {}).get("reason"))]
    number_of: dict[tuple[str, str], str] = {}
    lost = doubled = wrong_total = 0
    for platform in ("quickbooks", "stripe"):
        held = Counter((r["tenant"], r["job"]) for r in records[platform])
        for r in records[platform]:
            number_of.setdefault((r["tenant"], r["job"]), r["number"])
            w = want.get((r["tenant"], r["job"]))
            if w is None or platform not in w["platforms"]:
                problems.append(f"{platform}: invoice {r['number']} for {r['tenant']}/{r['job']} was never asked for")
                doubled += 1
            elif r.get("status") == "draft":  # Stripe: made but never finalised
                wrong_total += 1
                problems.append(f"{platform}: {r['tenant']}/{r['job']} left as a draft")
            elif r["total"] != w["total"] or r["currency"] != w["currency"]:
                wrong_total += 1
                problems.append(f"{platform}: {r['tenant']}/{r['job']} total {r['total']} {r['currency']}, "
                                f"the money rules say {w['total']} {w['currency']}")
        for key, w in want.items():
            if platform not in w["platforms"]:
                continue
            n = held.get(key, 0)
            if n > 1:
                doubled += n - 1
                problems.append(f"{platform}: {key[0]}/{key[1]} invoiced {n} times")
            elif n == 0 and (*key, "invoice", platform) not in dead_by:
                lost += 1
                problems.append(f"{platform}: {key[0]}/{key[1]} never invoiced, and not in the dead-letter queue")

    messaged = {kind: Counter((m["to"], m["number"], m["kind"]) for m in messages[kind]) for kind in ("email", "sms")}
    messages_doubled = sum(n - 1 for c in messaged.values() for n in c.values() if n > 1)
    problems += [f"{kind} to {k[0]} about {k[1]} ({k[2]}) sent {n} times" for kind, c in messaged.items()
                 for k, n in c.items() if n > 1]
    messages_lost = 0
    held_back = {(d["tenant"], d["job_id"], d["kind"]) for d in dead if d["kind"] in ("email", "sms")}
    stopped = {(d["tenant"], d["job_id"]) for d in dead if d["kind"] in ("invoice", "pdf")}  # messages never due
    for key, w in want.items():
        number = number_of.get(key)
        for kind in ("email", "sms"):
            if not w[kind] or number is None:
                continue
            if messaged[kind].get((w[kind], number, "invoice"), 0) == 0 and (*key, kind) not in held_back \
                    and key not in stopped:
                messages_lost += 1
                problems.append(f"{kind} about {number} ({key[0]}/{key[1]}) never sent, and not held with a reason")
    problems += [f"chaos: {f}" for f in chaos.failed]

    notes = [f"{d['status']}: {d['tenant']}/{d['job_id']} {d['kind']} on {d['target']}: "
             f"{d['last_error'] or (d['detail'] or {}).get('reason')}" for d in dead]
    figures = {
        "events posted": sum(len(u) for u in plan.units),
        "distinct events": len(plan.unique),
        "accepted": len(posted.accepted() & unique_ids),
        "duplicates absorbed": posted.duplicates,
        "out-of-order pairs": plan.pairs,
        "posts retried (outage)": posted.outages,
        "jobs to invoice": len(want),
        "platform invoices expected": sum(len(w["platforms"]) for w in want.values()),
        "platform invoices held": sum(len(v) for v in records.values()),
        "emails / SMS sent": f"{len(messages['email'])} / {len(messages['sms'])}",
        "kills survived": cluster.kills,
        "restarts survived": f"{sum(chaos.restarts.values())} (redis {chaos.restarts['redis']}, "
                             f"postgresql {chaos.restarts['postgresql']})",
        "vendor faults injected": sum(1 for d in chaos.done if not d.split(": ", 1)[1].startswith(("kill", "restart"))),
        "failed attempts retried": retried(cluster),
        "dead letters / held for review": f"{sum(d['status'] == 'dead' for d in dead)} / "
                                          f"{sum(d['status'] == 'review' for d in dead)}",
        "wrong totals": wrong_total,
        "invoices lost": lost,
        "invoices doubled": doubled,
        "messages lost": messages_lost,
        "messages doubled": messages_doubled,
        "elapsed": f"{elapsed:.0f} s",
    }
    return Verdict(figures, problems, notes)


# ---------------------------------------------------------------- one run

def settled(cluster: Cluster) -> bool:
    """Nothing left to do: no event waiting, no delivery open, every invoice done or stopped at a
    dead letter (our database says so; the verdict then checks it against the vendors)."""
    import sqlalchemy as sa

    with cluster.engine.connect() as conn:
        open_ = conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM events WHERE status = 'accepted')"
            " + (SELECT count(*) FROM deliveries WHERE status IN ('pending', 'running', 'retry'))"
            " + (SELECT count(*) FROM invoices i WHERE i.stage <> 'done' AND NOT EXISTS ("
            "     SELECT 1 FROM deliveries d WHERE d.invoice_id = i.id AND d.status IN ('dead', 'review')))"
        )).scalar_one()
    return open_ == 0


def run(events: int, seed: int, kills: int, redis_restarts: int, pg_restarts: int, sim_rounds: int = 1,
        concurrency: int = 8, pace: float = 0.0, timeout: float = 600, folder: Path | None = None,
        env: dict[str, str] | None = None, say=lambda *_: None) -> Verdict:
    rng = random.Random(seed)
    plan = make_events(events, rng)
    started = time.monotonic()
    with Cluster(folder, env=env) as cluster:
        say(f"cluster up in {time.monotonic() - started:.0f} s (logs in {cluster.folder})")
        want = expected(plan, cluster.tenants)
        platform_total = sum(len(w["platforms"]) for w in want.values())
        posts = sum(len(u) for u in plan.units)
        posted = Posted()
        clocks = {"posted": lambda: posted.settled / posts,
                  "invoiced": lambda: sum(len(s.invoices) for p in ("quickbooks", "stripe")
                                          for s in cluster.sims(p)) / platform_total}
        chaos = Chaos(cluster, rng, kills, redis_restarts, pg_restarts, sim_rounds)
        stop = threading.Event()
        agent = threading.Thread(target=chaos.run, args=(clocks, stop), daemon=True)
        t0 = time.monotonic()
        agent.start()
        post_all(cluster, plan, posted, concurrency, pace)
        say(f"posted {posts} events in {time.monotonic() - t0:.0f} s")
        try:
            wait_until(lambda: not agent.is_alive() and settled(cluster), timeout, "every job to settle", every=0.5)
            time.sleep(1.5)  # a last copy of a task still in a worker's hands: give it the time to show itself
            wait_until(lambda: settled(cluster), 60, "every job to settle", every=0.5)
        except TimeoutError as exc:
            say(str(exc))
        finally:
            stop.set()
        for line in chaos.done:
            say(f"  fault at {line}")
        return verdict(cluster, plan, posted, chaos, time.monotonic() - t0)
