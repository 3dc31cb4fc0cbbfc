"""The embedded broker (`filesystem://`, folders under var/) with one fix to kombu's filesystem transport.

kombu writes a message file in place: the file appears empty, then fills. A worker polling the
folder can take it in between, read nothing, and die of the JSONDecodeError (seen as "Unrecoverable
error" in the demo's log, after which the demo waited for workers that were gone). Here a message is
written whole to a name no reader looks at, then renamed into place: rename is atomic, so a reader
sees the whole message or none. Registered under the `filesystem` alias by invoicer.tasks.
"""
from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".part"  # readers take only names ending in "<queue>.msg"
        with open(partial, "wb") as f:
            f.write(str_to_bytes(dumps(payload)))
        os.replace(partial, final)


class Transport(filesystem.Transport):
    Channel = Channel


def register() -> None:
    """`filesystem://` brokers use this transport in this process."""
    from kombu.transport import TRANSPORT_ALIASES

    TRANSPORT_ALIASES["filesystem"] = "invoicer.embedded:Transport"
