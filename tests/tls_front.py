"""A TLS front for the embedded broker: Tansu 0.6.0 cannot serve TLS itself (its
``--cert`` and ``--key`` options are mutually exclusive, and ``--cert`` alone serves
plain text), so the security tests put real TLS in front of it: the broker advertises
this front's port, and every client byte goes through a verified TLS session."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading

from stream.broker import free_port


class TlsFront:
    """Accept TLS on ``127.0.0.1:port`` and relay the plain bytes to ``upstream_port``."""

    def __init__(self, context: ssl.SSLContext, upstream_port: int) -> None:
        self.context = context
        self.upstream_port = upstream_port
        self.port = free_port()
        self.handshakes = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._relay(reader, up_writer), self._relay(up_reader, writer))

    def __enter__(self) -> TlsFront:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._client, "127.0.0.1", self.port, ssl=self.context),
            self._loop,
        ).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
