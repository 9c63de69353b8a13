"""One prediction on one file, for OSCAR's supervisor: ``python -m
modelplane.backends.export.oneshot MODEL_DIR INPUT_FILE OUTPUT_DIR [--loader L] [--entrypoint E]``.

The input's type is guessed from its name (``.json`` is JSON input); the result is written to
``OUTPUT_DIR`` as ``<input stem>.<ext of the result's type>``. A failed prediction exits 1 with
the model's error on stderr, so OSCAR marks the job failed.
"""

from __future__ import annotations

import argparse
import asyncio
import mimetypes
import sys
from pathlib import Path

from modelplane.model.contract import LoadedModel
from modelplane.model.loader import load_model
from modelplane.worker.server import Predictor


async def _predict(model: LoadedModel, content_type: str, body: bytes) -> tuple[int, str, bytes]:
    predictor = Predictor(model)
    done: asyncio.Future[tuple[int, str, bytes]] = asyncio.get_running_loop().create_future()
    predictor.submit(
        content_type.encode("latin-1"),
        body,
        lambda status, ctype, payload: done.set_result((status, ctype.decode("latin-1"), payload)),
    )
    return await done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelplane.backends.export.oneshot")
    parser.add_argument("model_dir")
    parser.add_argument("input_file")
    parser.add_argument("output_dir")
    parser.add_argument("--loader", default="auto")
    parser.add_argument("--entrypoint", default=None)
    args = parser.parse_args(argv)
    source = Path(args.input_file)
    model = load_model(args.model_dir, args.entrypoint, args.loader)
    model.load()
    content_type = mimetypes.guess_type(source.name)[0] or "application/octet-stream"
    status, ctype, payload = asyncio.run(_predict(model, content_type, source.read_bytes()))
    if status >= 400:
        sys.stderr.write(payload.decode("utf-8", "replace") + "\n")
        return 1
    base = ctype.split(";", 1)[0].strip()
    ext = ".json" if base == "application/json" else mimetypes.guess_extension(base) or ".out"
    out = Path(args.output_dir) / (source.stem + ext)
    out.write_bytes(payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
