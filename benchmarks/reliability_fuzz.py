"""Scenario 9 of issue 7: fuzzed HTTP requests on every route (Hypothesis), hostile bodies validly
signed included, then replays of one signed push and one signed Xero webhook body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import Counter
from typing import Any

from benchmarks.reliability_harness import (
    PUSH_TRIGGERS,
    TRIGGER,
    Result,
    Stack,
    drain,
    seed_invoices,
    stack,
    timed,
)


# ==================================================================================== 9. fuzzing
def _push_signature(key: str, raw: bytes, timestamp: int) -> str:
    """The timestamped push signature of issue 7 point 4 (Stripe's form)."""
    mac = hmac.new(key.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _request_strategy() -> Any:
    from hypothesis import strategies as st

    scalar = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=False),
        st.text(max_size=20),
    )
    ids = st.one_of(
        st.integers(min_value=-5, max_value=10**6),
        st.sampled_from(["²", "١٢", "1e9", "0x10", " 7 ", "", "-1", "9" * 40, "1" * 5000]),
        st.text(max_size=12),
        st.floats(allow_nan=False),
        st.lists(st.integers(), max_size=3),
    )
    random_json = st.recursive(
        scalar,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    )

    def deep(n: int) -> bytes:
        return ("[" * n + "]" * n).encode() if n % 2 else ('{"id":' * n + "1" + "}" * n).encode()

    bodies = st.one_of(
        ids.map(lambda i: json.dumps({"id": i}).encode()),
        random_json.map(lambda v: json.dumps(v).encode()),
        st.integers(min_value=500, max_value=3000).map(deep),
        st.integers(min_value=4301, max_value=6000).map(lambda n: ('{"id": ' + "7" * n + "}").encode()),
        st.integers(min_value=257, max_value=400).map(
            lambda kb: b'{"id": 1, "pad": "' + b"x" * kb * 1024 + b'"}'
        ),
        st.binary(max_size=200),
        st.just(b""),
    )
    signing = st.sampled_from(["valid", "none", "garbage", "stale", "future", "wrong-key"])
    encodings = st.sampled_from(["plain", "base64", "bad-base64"])
    push = st.tuples(
        st.just("push"),
        st.sampled_from([*PUSH_TRIGGERS, "nope", "../new_invoice"]),
        bodies,
        signing,
        encodings,
    )
    xero = st.tuples(st.just("xero"), st.just(""), bodies, signing, encodings)
    query = st.dictionaries(
        st.sampled_from(["ticket", "state", "code", "choice", "error", "tenant", "x"]),
        st.text(max_size=40),
        max_size=4,
    )
    connect = st.tuples(
        st.just("connect"),
        st.sampled_from(["connect", "callback", "choose", "nope"]),
        query,
        st.just(""),
        st.just(""),
    )
    return st.one_of(push, xero, connect)


def _send_fuzzed(s: Stack, case: tuple[Any, ...]) -> dict[str, Any]:
    """Build the API Gateway event for one fuzzed request and call the route's handler."""
    from urllib.parse import urlencode

    from clientary_xero.local.environment import (
        FakeLambdaContext,
        api_gateway_event,
        load_handler,
        xero_webhook_event,
    )
    from clientary_xero.local.resources import SAMPLE_PUSH_KEY, SAMPLE_XERO_WEBHOOK_KEY
    from clientary_xero.usecases.signatures import CLIENTARY_PUSH_HEADER, sign_base64

    kind, route, body, signing, encoding = case
    now = int(time.time())
    if kind == "connect":
        path = f"/oauth/xero/{route}"
        event = api_gateway_event(path, b"", None)
        event["routeKey"] = f"GET {path}"
        event["requestContext"]["http"]["method"] = "GET"
        event["rawQueryString"] = urlencode(body)
        event["queryStringParameters"] = dict(body) or None
        event.pop("body", None)
        result: dict[str, Any] = load_handler("xero_connect").lambda_handler(
            event, FakeLambdaContext("connect")
        )
        return result
    raw: bytes = body
    if kind == "push":
        if signing == "valid":  # the local environment signs the way the product expects
            trigger = f"clientary.{route}" if route in PUSH_TRIGGERS else TRIGGER
            if encoding == "plain":
                return dict(s.env.push(trigger, 0, body=raw))
        key = "not-the-key" if signing == "wrong-key" else SAMPLE_PUSH_KEY
        header = {
            "valid": _push_signature(key, raw, now),
            "none": None,
            "garbage": "t=abc,v1=zz",
            "stale": _push_signature(key, raw, now - 3600),
            "future": _push_signature(key, raw, now + 3600),
            "wrong-key": _push_signature(key, raw, now),
        }[signing]
        path = f"/webhooks/clientary/{route}"
        event = api_gateway_event(path, raw, None)
        if header:
            event["headers"][CLIENTARY_PUSH_HEADER] = header
    else:
        key = "not-the-key" if signing == "wrong-key" else SAMPLE_XERO_WEBHOOK_KEY
        header = None if signing == "none" else ("AAAA" if signing == "garbage" else sign_base64(key, raw))
        event = xero_webhook_event(raw, header)
    if encoding == "base64":
        event["isBase64Encoded"] = True
        event["body"] = base64.b64encode(raw).decode()
    elif encoding == "bad-base64":
        event["isBase64Encoded"] = True
        event["body"] = "%%not base64%%" + raw.decode("latin-1")[:20]
    if kind == "xero":
        result = load_handler("xero_webhook").lambda_handler(event, FakeLambdaContext("xero_webhook"))
        return result
    trigger = f"clientary.{route}" if route in PUSH_TRIGGERS else TRIGGER
    return dict(s.env.invoke_trigger(trigger, event))


def _has_reason(response: dict[str, Any]) -> bool:
    body = response.get("body") or ""
    if not body.strip():
        return False
    try:
        parsed = json.loads(body)
    except ValueError:
        return True  # an HTML or text page that says why
    return bool(parsed.get("error") or parsed.get("message")) if isinstance(parsed, dict) else bool(parsed)


def fuzz(size: int = 10_000) -> Result:
    """Fuzzed HTTP requests on every route (Hypothesis), hostile bodies validly signed included,
    then replays of one signed push and one signed Xero webhook."""
    from hypothesis import HealthCheck, Phase, given, settings

    result = Result(
        "9", "fuzzed HTTP requests on every route (Hypothesis)", f"{size} requests + 2x20 replays"
    )
    started = time.perf_counter()
    with stack() as s:
        s.poll()
        seed_invoices(s, 3)
        counts: Counter[str] = Counter()
        problems: list[str] = []

        def note(problem: str) -> None:
            counts["problems"] += 1
            if len(problems) < 5:
                problems.append(problem)

        @settings(
            max_examples=size,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(_request_strategy())
        def one(case: tuple[Any, ...]) -> None:
            counts["requests"] += 1
            sent_before = s.sqs.sent
            label = f"{case[0]} {case[1]} {case[3]}/{case[4]} {repr(case[2])[:40]}"
            try:
                response = _send_fuzzed(s, case)
            except Exception as exc:
                counts["uncaught exceptions"] += 1
                note(f"{label}: {type(exc).__name__}: {str(exc)[:80]}")
                return
            s.responses.append(response)
            status = int(response.get("statusCode", 0))
            counts[f"{status // 100}xx"] += 1
            documented = status == 503 and "retry-after" in {k.lower() for k in response.get("headers", {})}
            if status >= 500 and not documented:
                counts["undocumented 5xx"] += 1
                note(f"{label}: {status} {str(response.get('body'))[:80]}")
            if status >= 400:
                # Xero's webhook rules: a bad signature gets a 401 with an empty body.
                xero_401 = case[0] == "xero" and status == 401
                if s.sqs.sent != sent_before:
                    counts["enqueued when refused"] += 1
                    note(f"{label}: refused with {status} but enqueued {s.sqs.sent - sent_before}")
                if not xero_401 and not _has_reason(response):
                    counts["refusals without a reason"] += 1
                    note(f"{label}: {status} without a reason")

        one()
        # --- replays: one signed push and one signed Xero webhook body, 20 times each
        invoice = seed_invoices(s, 1)[0]
        sent_before = s.sqs.sent
        replies = [s.push(invoice["id"]) for _ in range(20)]
        push_enqueued = s.sqs.sent - sent_before
        contact = s.env.xero.seed_contact(s.tenant, Name="Replayed Contact Ltd")
        from clientary_xero.connectors.xero.webhooks import event_for, payload_for

        raw = payload_for([event_for("CONTACT", "UPDATE", contact["ContactID"], s.tenant)])
        calls_before = len(s.env.xero.requests)
        s.env.xero_webhook(body=raw)
        drain(s)
        one_delivery = len(s.env.xero.requests) - calls_before
        calls_before = len(s.env.xero.requests)
        for _ in range(20):
            s.env.xero_webhook(body=raw)
        drain(s)
        replayed_calls = len(s.env.xero.requests) - calls_before
        result.figures.update({k: v for k, v in sorted(counts.items()) if k != "problems"})
        result.figures["push replayed 20x: messages"] = push_enqueued
        result.figures["Xero webhook replayed 20x: Xero calls"] = replayed_calls
        result.expect(counts["requests"] >= size, f"only {counts['requests']} requests generated")
        for kind in (
            "uncaught exceptions",
            "undocumented 5xx",
            "enqueued when refused",
            "refusals without a reason",
        ):
            result.expect(counts[kind] == 0, f"{counts[kind]} {kind}")
        result.problems.extend(f"  e.g. {p}" for p in problems if result.problems)
        result.expect(all(r.get("statusCode", 500) < 500 for r in replies), "a replayed push got a 5xx")
        result.expect(push_enqueued <= 1, f"a push replayed 20 times enqueued {push_enqueued} messages")
        result.expect(
            replayed_calls == 0,
            f"a Xero webhook body replayed 20 times cost {replayed_calls} Xero calls "
            f"(one delivery: {one_delivery})",
        )
        return timed(result, started, s)
