"""A DEEPaaS training, in a process of its own: ``python -m modelplane.worker.train``.

The platform (or ``modelplane run``) starts one per ``POST …/train/``, with the model's own
interpreter, folder and environment variables, never inside a serving replica; on the platform
inside the deployment's sandbox, where the only writable folder besides ``/tmp`` and its cache is
the training's own (``--record`` and ``--body`` are in it). It reads the request's arguments as
DEEPaaS does (query string, form, JSON body; the module's own ``get_train_args`` fields), then
says on stdout, in one line, ``accepted`` or ``invalid`` — the POST answers from that — and keeps
its record (a JSON file) up to date itself: ``running`` with its parsed arguments, then ``done``
with ``train()``'s result or ``error`` with its message. The record therefore outlives the
platform: a training still running when the platform restarts finishes and writes its result.
The platform reads this record back as untrusted input (it is written by the model's code's
process) and keeps what it trusts — pid, reservation, dates — in a record of its own.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import orjson

from modelplane.model.contract import json_bytes

DATE = "%Y-%m-%d %H:%M:%S.%f"  # DEEPaaS's str(datetime.now())


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Replace the record atomically: readers see the old one or the new one, whole."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(json_bytes(record))
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    try:
        return orjson.loads(json_bytes(value))
    except TypeError:
        return str(value)


def _args_for_record(kwargs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if hasattr(value, "original_filename") and hasattr(value, "content_type"):
            # DEEPaaS lists an uploaded file by its info, not its temporary path
            out[key] = [getattr(value, "name", key), value.content_type, value.original_filename]
        else:
            out[key] = _jsonable(value)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="modelplane-train")
    p.add_argument("--record", required=True)
    p.add_argument("--model-path", required=True)
    p.add_argument("--entrypoint", default=None)
    p.add_argument("--loader", default="deepaas")
    p.add_argument("--content-type", default="")
    p.add_argument("--query", default="")
    p.add_argument("--body", default=None, help="a file holding the request body")
    p.add_argument("--log", default=None, help="where train()'s output goes once accepted")
    a = p.parse_args(argv)
    record_path = Path(a.record)
    record: dict[str, Any] = orjson.loads(record_path.read_bytes())
    body = Path(a.body).read_bytes() if a.body else b""
    try:
        from modelplane.fronts.deepaas import train_arguments
        from modelplane.model.loader import load_model

        model = load_model(a.model_path, a.entrypoint, a.loader)
        kwargs = train_arguments(model, a.content_type, a.query.encode("latin-1"), body)
    except Exception as exc:
        messages = getattr(exc, "messages", None)
        if messages is not None:
            record.update(status="invalid", messages=messages)
            write_record(record_path, record)
            print("invalid", flush=True)
            return 2
        traceback.print_exc()
        record.update(status="error", message=f"{type(exc).__name__}: {exc}")
        write_record(record_path, record)
        print("error", flush=True)
        return 1
    finally:
        if a.body:
            Path(a.body).unlink(missing_ok=True)
    record.update(status="running", args=_args_for_record(kwargs))
    write_record(record_path, record)
    print("accepted", flush=True)
    if a.log:
        # From here on the training may outlive whoever started it (a platform restart): its
        # output goes to a file of its own, never to pipes that may lose their reader (and then
        # block it when full, or fail its writes).
        sys.stderr.flush()
        fd = os.open(a.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    try:
        model.load()  # DEEPaaS warms each worker process before it trains
        adapter = model.instance
        output = adapter.train(kwargs)
    except BaseException as exc:  # the record always says how it ended
        traceback.print_exc()
        record.update(status="error", message=f"{exc}")
        write_record(record_path, record)
        return 1
    finish = datetime.datetime.now()
    start = datetime.datetime.strptime(record["date"], DATE)
    record.update(
        status="done",
        result={
            "output": _jsonable(output),
            "finish_date": finish.strftime(DATE),
            "duration": str(finish - start),
        },
    )
    write_record(record_path, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
