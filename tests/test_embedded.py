"""The embedded broker: a message becomes visible to readers only whole (kombu's own filesystem
transport wrote it in place, and a worker that read it half-written died of a JSONDecodeError)."""
from __future__ import annotations

import json
import os

from kombu import Connection

from invoicer import embedded


def _connection(folder) -> Connection:
    embedded.register()
    return Connection("filesystem://", transport_options={
        "data_folder_in": str(folder), "data_folder_out": str(folder), "store_processed": False,
        "control_folder": str(folder / "control")})


def test_a_message_is_renamed_into_the_folder_only_once_written_whole(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def replace(src, dst):  # what a reader could see just before the message becomes visible
        seen.append((sorted(n for n in os.listdir(tmp_path) if n.endswith(".msg")), open(src, "rb").read()))
        real_replace(src, dst)

    monkeypatch.setattr(embedded.os, "replace", replace)
    with _connection(tmp_path) as conn:
        assert type(conn.transport) is embedded.Transport
        queue = conn.SimpleQueue("ingest")
        queue.put({"event_pk": 42})
        [(visible, written)] = seen
        assert visible == [] and json.loads(written)["body"]  # nothing half-written was ever listed
        message = queue.get(timeout=1)
        assert message.payload == {"event_pk": 42}
        message.ack()
        queue.close()
    assert [n for n in os.listdir(tmp_path) if n.endswith((".msg", ".part"))] == []
