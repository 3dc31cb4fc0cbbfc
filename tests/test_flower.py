"""Flower as an operator sees it: `invoicer flower` with basic auth on the test broker, a threads-pool
worker (invoices, notify) and a prefork one (ingest, render, beat), neither sending task events of
its own; one job goes through; a real headless Chromium (Debian's, driven by Playwright) logs in,
finds the job's tasks on the tasks page in state SUCCESS, and saves the screenshot the README shows."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

from .conftest import ROOT, VAR, answers, free_port, make_event, post, wait_for

CHROMIUM = "/usr/bin/chromium"
USER, PASSWORD = "ops", "flower-test-password"
AUTH = (USER, PASSWORD)
# the README's picture is refreshed only when asked (INVOICER_UPDATE_SCREENSHOT=1): a test run leaves
# the work tree as it found it
SCREENSHOT = (ROOT / "docs" / "img" / "flower.png" if os.environ.get("INVOICER_UPDATE_SCREENSHOT") == "1"
              else VAR / "flower.png")
PIPELINE_TASKS = {"invoicer.ingest.process_many", "invoicer.invoices.create", "invoicer.render.pdf",
                  "invoicer.notify.send"}


def _log(procs, proc) -> Path:
    """The log file conftest's Processes gives the process (named after its command and index)."""
    i = procs.procs.index(proc)
    return VAR.parent / f"{VAR.name}-{proc.args[3]}-{i}.log"


def _logged(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text(errors="replace")


def _flower(procs, port: int, env: dict) -> subprocess.Popen:
    proc = procs.start("flower", "--port", str(port), env=env)
    wait_for(lambda: answers(port, "/healthcheck"), 60, what="Flower")
    return proc


def _tasks(base: str) -> dict[str, dict]:
    r = requests.get(f"{base}/api/tasks", auth=AUTH, timeout=10)
    r.raise_for_status()
    return r.json()


def test_refused_without_credentials():
    """Without INVOICER_FLOWER_BASIC_AUTH (and without --no-auth) Flower does not start."""
    env = {k: v for k, v in os.environ.items() if k not in ("INVOICER_FLOWER_BASIC_AUTH", "FLOWER_AUTH")}
    for bad in (None, "nopassword", "user:"):
        if bad is not None:
            env["INVOICER_FLOWER_BASIC_AUTH"] = bad
        run = subprocess.run([sys.executable, "-m", "invoicer.cli", "flower", "--port", str(free_port())],
                             env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert run.returncode == 2, run.stderr
        assert "INVOICER_FLOWER_BASIC_AUTH" in run.stderr


@pytest.mark.slow
def test_flower_shows_a_finished_jobs_tasks_in_a_real_browser(client, procs):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    env = {"INVOICER_FLOWER_BASIC_AUTH": f"{USER}:{PASSWORD}", "INVOICER_TASK_EVENTS": "false"}
    io = procs.start("worker", "--pool", "threads", "--concurrency", "8", "--queues", "invoices,notify",
                     "--hostname", "io@%h", "--log-level", "info", env=env)
    cpu = procs.start("worker", "--concurrency", "2", "--queues", "ingest,render,beat", "--hostname", "cpu@%h",
                      "--log-level", "info", env=env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    flower = _flower(procs, port, env)

    # the workers send no task events of their own; Flower's broadcast turns them on in both
    for worker in (io, cpu):
        wait_for(lambda: _logged(_log(procs, worker), "Events of group {task} enabled by remote"), 60,
                 what="Flower to enable task events on the worker")
    assert requests.get(f"{base}/tasks", timeout=10).status_code == 401
    assert requests.get(f"{base}/metrics", timeout=10).status_code == 401  # Flower leaves it open; we do not
    assert requests.get(f"{base}/tasks", auth=(USER, "wrong"), timeout=10).status_code == 401

    assert post(client, make_event()).status_code == 202
    wait_for(lambda: client.get("/v1/jobs/acme-hvac/J-1").json().get("state") == "done", 60, what="the job")

    def seen():
        tasks = [t for t in _tasks(base).values() if t["name"] in PIPELINE_TASKS]
        return tasks if {t["name"] for t in tasks} == PIPELINE_TASKS and len(tasks) == 4 \
            and all(t["state"] == "SUCCESS" for t in tasks) else None

    tasks = wait_for(seen, 60, what="the job's four tasks in Flower, all SUCCESS")
    # the event; its two platforms in one task, one PDF, its three messages in one task; every argument an
    # id or a list of ids, nothing about the customer
    args = {t["name"]: t["args"] for t in tasks}
    assert re.fullmatch(r"\(\[\d+, \d+\],?\)", args["invoicer.invoices.create"]), args
    assert re.fullmatch(r"\(\[\d+, \d+, \d+\],?\)", args["invoicer.notify.send"]), args
    for t in tasks:
        assert re.fullmatch(r"[(\[](\d+|\[\d+(, \d+)*\]),?[)\]]", t["args"]) and t["kwargs"] == "{}", t
        assert "huong" not in str(t).lower() and "+1407" not in str(t)
    assert {t["worker"].split("@")[0] for t in tasks} == {"io", "cpu"}

    metrics = requests.get(f"{base}/metrics", auth=AUTH, timeout=10)
    assert metrics.status_code == 200
    assert re.search(r'flower_events_total\{[^}]*task="invoicer\.invoices\.create"', metrics.text)

    def queues():  # the queues the workers consume, lengths read from Redis (refreshing Flower's worker list)
        requests.get(f"{base}/api/workers", params={"refresh": 1}, auth=AUTH, timeout=30)
        r = requests.get(f"{base}/api/queues/length", auth=AUTH, timeout=10).json()["active_queues"]
        return {q["name"]: q["messages"] for q in r} if len(r) == 5 else None

    assert set(wait_for(queues, 60, what="every queue on Flower's broker view")) == {
        "ingest", "invoices", "render", "notify", "beat"}

    with tempfile.TemporaryDirectory(prefix="chromium-") as profile, sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"],
            http_credentials={"username": USER, "password": PASSWORD}, viewport={"width": 1400, "height": 720})
        try:
            page = browser.new_page()
            assert page.goto(f"{base}/tasks").status == 200
            rows = page.locator("table#tasks-table tbody tr")
            rows.filter(has_text="invoicer.notify.send").first.wait_for(timeout=30_000)
            page.wait_for_function("document.querySelectorAll('#tasks-table tbody tr').length >= 4",
                                   timeout=30_000)
            table = page.locator("table#tasks-table").inner_text()
            for name in PIPELINE_TASKS:
                assert name in table
            assert table.count("SUCCESS") >= 4
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert SCREENSHOT.read_bytes().startswith(b"\x89PNG")

    # stopping Flower saves its history and turns task events off again; a new Flower reads it back
    ids = {t["uuid"] for t in tasks}
    os.killpg(flower.pid, signal.SIGTERM)
    flower.wait(30)
    for worker in (io, cpu):
        wait_for(lambda: _logged(_log(procs, worker), "Events of group {task} disabled by remote"), 30,
                 what="task events off once Flower is gone")
    assert list(VAR.glob("flower.db*"))
    _flower(procs, port, env)
    assert ids <= set(_tasks(base))
