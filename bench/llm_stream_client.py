#!/usr/bin/env python3
"""Reference streaming client for bench/llm-stream.sh: the Python side of the comparison.

An open-model load generator in the style of vLLM's benchmark_serving.py and guidellm: asyncio,
one task per request started at its scheduled time, kept-alive HTTP/1.1 connections from a pool,
the answer's server-sent events read as they arrive. Standard library only (no download), so it
runs offline; it does what an aiohttp or httpx client does on the same event loop, without their
per-request overhead, which is the fairest reference we can ship.

    llm_stream_client.py URL RATE SECONDS INPUT_TOKENS OUTPUT_TOKENS

Prints one JSON line: scheduled, completed, tokens, p99 send lag and p50/p99 TTFT (ms, from the
scheduled time).
"""

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


class Pool:
    """Kept-alive connections to one host:port."""

    def __init__(self, host, port):
        self.host, self.port, self.idle = host, port, []

    async def get(self):
        if self.idle:
            return self.idle.pop()
        return await asyncio.open_connection(self.host, self.port)

    def put(self, conn):
        self.idle.append(conn)


async def read_chunked_sse(reader, on_token):
    """Read a chunked body, calling on_token() for each `data:` event other than [DONE]."""
    pending = b""
    while True:
        size_line = await reader.readline()
        size = int(size_line.strip().split(b";")[0], 16)
        if size == 0:
            await reader.readline()  # the blank line after the last chunk
            return
        pending += await reader.readexactly(size)
        await reader.readexactly(2)
        while b"\n\n" in pending:
            event, pending = pending.split(b"\n\n", 1)
            if event.startswith(b"data: ") and event != b"data: [DONE]":
                on_token()


async def one(pool, path, authority, body, scheduled, out):
    lag = time.perf_counter() - scheduled
    reader, writer = await pool.get()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    writer.write(head + body)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    chunked = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower():
            chunked = True
    first = []
    tokens = [0]

    def on_token():
        if not first:
            first.append(time.perf_counter())
        tokens[0] += 1

    if status == 200 and chunked:
        await read_chunked_sse(reader, on_token)
        pool.put((reader, writer))
    else:
        writer.close()
    out.append((lag, (first[0] - scheduled) if first else None, tokens[0], status))


async def main():
    url, rate, seconds, input_tokens, output_tokens = sys.argv[1:6]
    rate, seconds = float(rate), float(seconds)
    parts = urlsplit(url)
    pool = Pool(parts.hostname, parts.port or 80)
    body = json.dumps(
        {
            "model": "simctl-llm",
            "prompt": [1] * int(input_tokens),
            "max_tokens": int(output_tokens),
            "stream": True,
        }
    ).encode()
    out, tasks = [], []
    start = time.perf_counter() + 0.2
    n = int(rate * seconds)
    for i in range(n):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(
            asyncio.create_task(one(pool, parts.path, parts.netloc, body, scheduled, out))
        )
    await asyncio.gather(*tasks, return_exceptions=True)
    ok = [o for o in out if o[3] == 200]
    lags = sorted(o[0] for o in out)
    ttfts = sorted(o[1] for o in ok if o[1] is not None)

    def pct(values, q):
        return 1000 * values[min(len(values) - 1, int(q * len(values)))] if values else None

    print(
        json.dumps(
            {
                "scheduled": n,
                "completed": len(ok),
                "tokens": sum(o[2] for o in ok),
                "lag_p99_ms": pct(lags, 0.99),
                "ttft_p50_ms": pct(ttfts, 0.50),
                "ttft_p99_ms": pct(ttfts, 0.99),
            }
        )
    )


asyncio.run(main())
