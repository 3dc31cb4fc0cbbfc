"""The reference for bench/run.py: the same FastAPI + uvicorn stack as the ingress, without its work.

POST /trivial   reads the body and answers 202 with a small JSON object (the framework's own cost).
POST /validate  also parses the JSON and validates it as an invoicer Event (what the ingress does
                before it touches the database or the broker), then answers 202.
Served the way `invoicer serve` serves the ingress: uvicorn.run(app, workers=1, access_log=False).
"""
from __future__ import annotations

import argparse
import json

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from invoicer.models import Event

app = FastAPI(title="bench reference")


@app.post("/trivial", status_code=202)
async def trivial(request: Request):
    body = await request.body()
    return JSONResponse({"ok": True, "bytes": len(body)}, status_code=202)


@app.post("/validate", status_code=202)
async def validate(request: Request):
    body = await request.body()
    event = Event.model_validate(json.loads(body.decode("utf-8")))
    return JSONResponse({"event_id": event.id, "job_id": event.job.id}, status_code=202)


@app.get("/healthz")
async def healthz():
    return {"ok": True}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log-level", default="warning")
    a = p.parse_args()
    uvicorn.run(app, host=a.host, port=a.port, log_level=a.log_level, workers=1, access_log=False)
