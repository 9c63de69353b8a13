"""Reference: the smallest raw asyncio protocol on httptools serving echo in-process.

No limits, no timeouts, no routing: the practical ceiling of Python HTTP on this machine, not a
server anyone should run.
"""

from __future__ import annotations

import asyncio
import json
import sys

import httptools
import uvloop


class Proto(asyncio.Protocol):
    def connection_made(self, transport):  # type: ignore[no-untyped-def]
        self.t = transport
        self.p = httptools.HttpRequestParser(self)
        self.body = b""

    def data_received(self, data: bytes) -> None:
        self.p.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        out = json.dumps(json.loads(self.body)).encode()
        self.body = b""
        self.t.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(out)).encode() + b"\r\n\r\n" + out
        )


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Proto, "127.0.0.1", port, backlog=1024)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
