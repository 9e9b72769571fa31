"""Run the Cortex-style predictor as one replica: uvicorn with `--processes` worker processes
(sharing one listening socket, as `uvicorn --workers` does) and `--threads` threads per process.

    python3 examples/python-predictor/serve.py --port 8000 --processes 2 --threads 2 [--mode cpu]

As a `simctl validate` / `simctl autoscale --actuator local` replica command:

    --replica-cmd 'python3 examples/python-predictor/serve.py --port {port} --processes {processes} --threads {threads}'
"""

import argparse
import os
import sys

import uvicorn


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--processes", type=int, default=1, help="uvicorn worker processes")
    p.add_argument("--threads", type=int, default=1, help="thread pool size per process")
    p.add_argument("--mode", choices=["sleep", "cpu"], default=os.environ.get("PREDICTOR_MODE", "sleep"))
    p.add_argument("--rows", type=int, default=int(os.environ.get("PREDICTOR_ROWS", "400")),
                   help="cpu mode: rows predicted per request")
    p.add_argument("--keep-alive", type=int, default=5,
                   help="seconds an idle connection stays open (uvicorn's default, 5)")
    p.add_argument("--nodelay", action="store_true",
                   help="set TCP_NODELAY on the workers' connections (uvicorn --workers does not: "
                        "see predictor.py)")
    p.add_argument("--log-requests", metavar="FILE",
                   help="append one line per request: pid, client port (the connection), "
                        "arrival, queue wait ms, work ms")
    a = p.parse_args()
    if a.processes < 1 or a.threads < 1:
        sys.exit("--processes and --threads must be at least 1")
    # The workers read their settings from the environment (uvicorn imports the app in each).
    os.environ["PREDICTOR_THREADS"] = str(a.threads)
    os.environ["PREDICTOR_MODE"] = a.mode
    os.environ["PREDICTOR_ROWS"] = str(a.rows)
    os.environ["PREDICTOR_NODELAY"] = "1" if a.nodelay else "0"
    if a.log_requests:
        os.environ["PREDICTOR_LOG"] = os.path.abspath(a.log_requests)
    uvicorn.run(
        "predictor:app",
        app_dir=os.path.dirname(os.path.abspath(__file__)),
        host=a.host,
        port=a.port,
        workers=a.processes,
        timeout_keep_alive=a.keep_alive,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
