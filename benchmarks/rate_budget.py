"""Throughput and calls in flight of the shared Xero rate budget, for N concurrent workers.

Each worker is built like a separate Lambda (its own token provider, State store, budget and
XeroClient); they share DynamoDB (moto, in-process, each request applied atomically as DynamoDB
does) and one Xero organisation (the sandbox, with a latency per call). Prints, per worker count:
calls done, wall time, calls per second, the most calls Xero saw at once, 429s, budget waits that
left the "Lambda" (BudgetExceeded) and DynamoDB requests per call. Figures, not assertions; moto's
requests cost CPU that real DynamoDB requests do not, so absolute numbers are pessimistic.

    .venv/bin/python benchmarks/rate_budget.py [--workers 1 5 20] [--calls 5] [--latency 0.1]
        [--minute-limit 10000]

The default minute limit is lifted so that the in-flight limit is what is measured; pass
``--minute-limit 60`` to watch the minute window hold calls back (in real time: slow).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import threading
import time
from typing import Any

import httpx


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--calls", type=int, default=5, help="calls per worker")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds Xero takes per call")
    parser.add_argument("--minute-limit", type=int, default=10_000)
    args = parser.parse_args()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        os.environ[key] = value
    print(
        f"{'workers':>7} {'calls':>6} {'seconds':>8} {'calls/s':>8} {'max in flight':>13} "
        f"{'429s':>5} {'waits':>6} {'ddb req/call':>12}"
    )
    for workers in args.workers:
        print(one_run(workers, args.calls, args.latency, args.minute_limit))


def one_run(workers: int, calls: int, latency: float, minute_limit: int) -> str:
    from moto import mock_aws
    from moto.core.botocore_stubber import BotocoreStubber

    from clientary_xero.connectors.http import use_transport
    from clientary_xero.connectors.xero.auth import XeroTokenProvider
    from clientary_xero.connectors.xero.client import XeroClient
    from clientary_xero.local.resources import create_resources
    from clientary_xero.local.xero_sandbox import XeroSandbox
    from clientary_xero.settings import reset_settings
    from clientary_xero.storage.aws import reset_clients
    from clientary_xero.storage.ratelimit import BudgetExceeded, RateBudget
    from clientary_xero.storage.secrets import SecretStore
    from clientary_xero.storage.state import StateStore

    lock = threading.RLock()
    original = BotocoreStubber.process_request
    ddb_requests = collections.Counter[str]()

    def atomic(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            if "dynamodb" in str(request.url):
                ddb_requests["n"] += 1
            return original(self, request)

    BotocoreStubber.process_request = atomic  # type: ignore[method-assign]
    try:
        with mock_aws():
            reset_clients()
            xero = XeroSandbox(latency=latency, minute_limit=minute_limit)
            resources = create_resources(prefix=f"bench{workers}", xero_secret=xero.bootstrap_secret())
            os.environ["STATE_TABLE"] = resources.state_table
            reset_settings()
            statuses: collections.Counter[int] = collections.Counter()
            waits = collections.Counter[str]()

            class Counting(httpx.BaseTransport):
                def handle_request(self, request: httpx.Request) -> httpx.Response:
                    response = xero.handle_request(request)
                    with lock:
                        statuses[response.status_code] += 1
                    return response

            barrier = threading.Barrier(workers)

            def worker() -> None:
                state = StateStore()
                tokens = XeroTokenProvider(resources.xero_secret_id, SecretStore(), state)
                client = XeroClient(
                    tokens, budget=RateBudget(state, per_minute=minute_limit, wait_seconds=60)
                )
                tokens.access_token()
                barrier.wait()
                for _ in range(calls):
                    while True:
                        try:
                            client.request("GET", "/Contacts")
                            break
                        except BudgetExceeded as exc:  # a Lambda would re-send its step; here: retry
                            with lock:
                                waits[exc.limit or "?"] += 1
                            time.sleep(min(exc.delay_seconds, 1))

            with use_transport(Counting()):
                before = ddb_requests["n"]
                threads = [threading.Thread(target=worker) for _ in range(workers)]
                started = time.perf_counter()
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                elapsed = time.perf_counter() - started
            done = statuses[200]
            per_call = (ddb_requests["n"] - before) / max(1, done)
            return (
                f"{workers:>7} {done:>6} {elapsed:>8.2f} {done / elapsed:>8.1f} {xero.max_in_flight:>13} "
                f"{statuses[429]:>5} {sum(waits.values()):>6} {per_call:>12.1f}"
                + (f"  {json.dumps(dict(waits))}" if waits else "")
            )
    finally:
        BotocoreStubber.process_request = original  # type: ignore[method-assign]
        reset_clients()


if __name__ == "__main__":
    main()
