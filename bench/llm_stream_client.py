#!/usr/bin/env python3
"""Reference streaming clients for bench/llm-stream.sh: the Python side of the comparison.

Open-model load generators in the style of vLLM's benchmark_serving.py and guidellm: asyncio, one
task per request started at its scheduled time, the answer's server-sent events read as they
arrive. Two clients:
  - `aiohttp`: what vLLM's benchmark_serving.py does (an aiohttp.ClientSession, `async for` over
    the response's lines), the way Python LLM benchmarks are written;
  - `stdlib`: asyncio streams over a pool of kept-alive connections, HTTP parsed by hand — no
    library overhead at all, the fastest Python we could write.

    llm_stream_client.py URL RATE SECONDS INPUT_TOKENS OUTPUT_TOKENS [aiohttp|stdlib]

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


async def one_aiohttp(session, url, payload, scheduled, out):
    """One request as vLLM's benchmark_serving.py sends it."""
    lag = time.perf_counter() - scheduled
    first, tokens = None, 0
    try:
        async with session.post(url=url, json=payload) as response:
            status = response.status
            if status == 200:
                async for chunk_bytes in response.content:
                    chunk = chunk_bytes.strip()
                    if not chunk or not chunk.startswith(b"data: "):
                        continue
                    if chunk == b"data: [DONE]":
                        continue
                    if first is None:
                        first = time.perf_counter()
                    tokens += 1
    except Exception:  # noqa: BLE001 - a failed request is counted, not raised
        status = 0
    out.append((lag, (first - scheduled) if first else None, tokens, status))


async def main():
    url, rate, seconds, input_tokens, output_tokens = sys.argv[1:6]
    client = sys.argv[6] if len(sys.argv) > 6 else "stdlib"
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
    session = None
    if client == "aiohttp":
        import aiohttp  # installed by bench/llm-stream.sh from bench/requirements.txt

        session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=6 * 60 * 60),
            connector=aiohttp.TCPConnector(limit=0),
        )
        payload = json.loads(body)
    start = time.perf_counter() + 0.2
    n = int(rate * seconds)
    for i in range(n):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if session is not None:
            job = one_aiohttp(session, url, payload, scheduled, out)
        else:
            job = one(pool, parts.path, parts.netloc, body, scheduled, out)
        tasks.append(asyncio.create_task(job))
    await asyncio.gather(*tasks, return_exceptions=True)
    if session is not None:
        await session.close()
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
