"""A Cortex-style Python predictor: the ASGI app each uvicorn worker process runs.

Cortex's Python runtime served a predictor with uvicorn: `processes_per_replica` worker
processes sharing one listening socket, and in each a thread pool of `threads_per_process`
threads that ran `predict()` off the event loop. Requests beyond the threads wait in the pool's
FIFO queue. This app does the same with Starlette:

- `POST /` runs the predictor in the process's thread pool and answers its result, with the
  headers `simctl serve` sends: `x-service-time-ms` (time in `predict`), `x-queue-wait-ms` (time
  waiting for a thread, measured inside the process: the socket's accept queue and the event
  loop are not in it) and `x-worker-pid` (which process served it).
- `GET /healthz` (and `/health`) answers 200 once the model is loaded.

Two kinds of work (`PREDICTOR_MODE`):
- `sleep` (default): sleep for the service time the load generator asks for in the
  `x-service-time-ms` request header (the simulator's own draw, so real and simulated runs see
  the same requests); a thread sleeping holds no GIL, like a predictor waiting on a GPU.
- `cpu`: real CPU work: a logistic regression fitted at start-up on scikit-learn's bundled
  digits data set (no download) predicts `PREDICTOR_ROWS` rows per request. Threads of one
  process then contend for the GIL and the two share the machine's cores.
"""

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

THREADS = int(os.environ.get("PREDICTOR_THREADS", "1"))

if os.environ.get("PREDICTOR_NODELAY") == "1":
    # uvicorn --workers binds its socket as socket.socket(AF_INET) (proto 0), and asyncio sets
    # TCP_NODELAY only on sockets whose proto is IPPROTO_TCP: the workers' connections keep
    # Nagle's algorithm, so a response written as head then body waits for the client's
    # delayed ACK (~40 ms on Linux) on every request after a connection's first. One worker
    # process (uvicorn's own create_server) is not affected. --nodelay sets it anyway.
    import asyncio.base_events
    import socket

    def _set_nodelay(sock):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    asyncio.base_events._set_nodelay = _set_nodelay
MODE = os.environ.get("PREDICTOR_MODE", "sleep")
ROWS = int(os.environ.get("PREDICTOR_ROWS", "400"))
DEFAULT_MS = float(os.environ.get("PREDICTOR_DEFAULT_MS", "10"))

# One pool per process, as Cortex set `loop.set_default_executor(ThreadPoolExecutor(...))`.
POOL = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="predict")


class Model:
    """What `predict` runs: a sleep, or a small scikit-learn model built at start-up."""

    def __init__(self, mode):
        self.mode = mode
        self.clf = None
        if mode == "cpu":
            from sklearn.datasets import load_digits
            from sklearn.linear_model import LogisticRegression

            digits = load_digits()
            self.x = digits.data
            self.clf = LogisticRegression(max_iter=200).fit(digits.data, digits.target)
        elif mode != "sleep":
            raise SystemExit(f"PREDICTOR_MODE must be sleep or cpu, not {mode!r}")

    def predict(self, service_ms, seq):
        if self.clf is None:
            time.sleep(max(service_ms, 0.0) / 1000.0)
            return None
        start = (seq * ROWS) % len(self.x)
        rows = self.x[start : start + ROWS]
        return int(self.clf.predict(rows).sum())


MODEL = None
SEQ = 0
# PREDICTOR_LOG=FILE: one line per request (pid, client port = the connection, arrival, queue
# wait, work), appended by every worker process — to see how connections map to processes.
LOG = open(os.environ["PREDICTOR_LOG"], "a", buffering=1) if os.environ.get("PREDICTOR_LOG") else None


async def startup():
    global MODEL
    MODEL = Model(MODE)


async def predict(request: Request):
    global SEQ
    arrived = time.perf_counter()
    try:
        service_ms = float(request.headers.get("x-service-time-ms", DEFAULT_MS))
    except ValueError:
        return PlainTextResponse("x-service-time-ms: expected milliseconds\n", status_code=400)
    await request.body()
    SEQ += 1
    seq = SEQ
    started = {}

    def work():
        started["at"] = time.perf_counter()
        out = MODEL.predict(service_ms, seq)
        started["done"] = time.perf_counter()
        return out

    result = await asyncio.get_running_loop().run_in_executor(POOL, work)
    wait_ms = (started["at"] - arrived) * 1000.0
    work_ms = (started["done"] - started["at"]) * 1000.0
    if LOG is not None:
        port = request.client.port if request.client else 0
        LOG.write(f"{os.getpid()} {port} {time.time():.6f} {wait_ms:.3f} {work_ms:.3f}\n")
    return JSONResponse(
        {"prediction": result},
        headers={
            "x-service-time-ms": f"{work_ms:.3f}",
            "x-queue-wait-ms": f"{wait_ms:.3f}",
            "x-worker-pid": str(os.getpid()),
        },
    )


async def health(_: Request):
    if MODEL is None:
        return PlainTextResponse("loading\n", status_code=503)
    return PlainTextResponse("ok\n")


app = Starlette(
    routes=[
        Route("/", predict, methods=["POST", "GET"]),
        Route("/healthz", health),
        Route("/health", health),
    ],
    on_startup=[startup],
)
