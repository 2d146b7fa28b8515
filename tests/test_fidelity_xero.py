"""Fidelity suite, Xero: every Xero operation the product calls, through the sandbox, answered as
Xero's OpenAPI description says; and Xero's own response examples through the product's mappers.

* ``OPERATIONS`` lists them as data (method, spec path template, spec file, the statuses the spec
  declares). ``test_the_list_is_every_call_the_product_makes`` reads the product's source for the
  calls it writes, and the scenario records the calls it really sends: both must be the list.
* One scenario (once per module) runs every Xero action (retries included: their look-ups are calls
  too), both triggers, the payments poll and the connect flow's reads through the sandbox, plus the
  400 answers the spec declares; each answer is validated with openapi-core against its operation's
  response schema, and fields the schema does not declare fail the test unless ``ALLOWED_EXTRA``
  gives the reason.
* Xero's examples (``responses.<status>.content.application/json.example``) are answered to the
  actions, the triggers' normaliser, the poll and the connect flow's readers, and their outputs
  are checked field by field.

The specs are read from ``../shared/xero-openapi`` (see ``tests.xero_contract``): skipped outside
the team folder, a failure under CI. Each spec is parsed once per session.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx
import pytest
from moto import mock_aws

from clientary_xero.connectors.base import ActionContext, registry
from clientary_xero.connectors.http import use_transport
from clientary_xero.connectors.xero.client import XeroClient
from clientary_xero.errors import PermanentError, RetryableError
from clientary_xero.local.resources import create_state_table
from clientary_xero.local.xero_sandbox import XeroSandbox
from clientary_xero.settings import reset_settings
from clientary_xero.storage.aws import reset_clients
from clientary_xero.storage.secrets import SecretStore
from clientary_xero.storage.state import StateStore
from tests.conftest_xero import SECRET_ID, STATE_TABLE, FakeClock
from tests.xero_contract import _resolve, _shape_matches, _spec, spec_dir, unknown_fields, validate_requests

ACCOUNTING, PROJECTS, IDENTITY = "xero_accounting.yaml", "xero-projects.yaml", "xero-identity.yaml"
PREFIX = {ACCOUNTING: "/api.xro/2.0", PROJECTS: "/projects.xro/2.0", IDENTITY: ""}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # the spec's template
    spec: str
    statuses: tuple[int, ...]  # what the spec declares (all of them are driven here)
    used_by: str

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def _op(method: str, path: str, statuses: tuple[int, ...], used_by: str, spec: str = ACCOUNTING) -> Operation:
    return Operation(method, path, spec, statuses, used_by)


# Every call the product makes to api.xero.com (the token endpoint, identity.xero.com, is OAuth and
# has no OpenAPI description). None of these declares a 404 or a 429: those are checked apart
# (test_the_undeclared_404_and_429_are_xeros_documented_shapes).
OPERATIONS = (
    _op("GET", "/Contacts", (200,), "find_contact, create_or_update_contact (by number, by name), adoption"),
    _op("GET", "/Contacts/{ContactID}", (200,), "find_contact by id, contact webhook triggers"),
    _op("POST", "/Contacts", (200, 400), "create_or_update_contact"),
    _op("GET", "/Invoices", (200,), "find_invoice, create_invoice retry"),
    _op("GET", "/Invoices/{InvoiceID}", (200,), "find_invoice by id, invoice webhook triggers"),
    _op("PUT", "/Invoices", (200, 400), "create_invoice"),
    _op("GET", "/Invoices/{InvoiceID}/History", (200,), "add_note_to_invoice retry"),
    _op("PUT", "/Invoices/{InvoiceID}/History", (200, 400), "add_note_to_invoice"),
    _op("GET", "/Payments", (200,), "create_payment retry, xero.new_payment poll"),
    _op("PUT", "/Payments", (200, 400), "create_payment"),
    _op("GET", "/Quotes", (200,), "create_quote retry"),
    _op("PUT", "/Quotes", (200, 400), "create_quote"),
    _op("GET", "/PurchaseOrders", (200,), "find_purchase_order, create_purchase_order retry"),
    _op("GET", "/PurchaseOrders/{PurchaseOrderID}", (200,), "find_purchase_order by id"),
    _op("PUT", "/PurchaseOrders", (200, 400), "create_purchase_order"),
    _op("GET", "/Items", (200,), "add_stock_items"),
    _op("POST", "/Items", (200, 400), "add_stock_items (upsert)"),
    _op("PUT", "/Items", (200, 400), "add_stock_items (create)"),
    _op("GET", "/Accounts", (200,), "create_bank_transfer retry (account codes)"),
    _op("GET", "/BankTransfers", (200,), "create_bank_transfer retry"),
    _op("PUT", "/BankTransfers", (200, 400), "create_bank_transfer"),
    _op("GET", "/Reports/BalanceSheet", (200,), "get_balance_sheet"),
    _op("GET", "/Reports/ProfitAndLoss", (200,), "get_profit_and_loss"),
    _op("GET", "/Organisation", (200,), "connect flow (organisation_name)"),
    _op("GET", "/Projects", (200, 400), "create_project retry", PROJECTS),
    _op("POST", "/Projects", (201, 400), "create_project", PROJECTS),
    _op("GET", "/Connections", (200,), "connect flow (list_connections)", IDENTITY),
)
BY_ID = {op.id: op for op in OPERATIONS}


@dataclass(frozen=True)
class Allowed:
    """Fields the sandbox sends that the operation's response schema does not declare, kept because
    Xero sends them too. ``example_backed``: one of Xero's own examples in the spec carries a field
    of this pattern (``test_the_allow_list_is_still_needed_and_true`` checks it)."""

    pattern: str  # a regular expression on the field's path (indexes as [*])
    statuses: tuple[int, ...]
    reason: str
    example_backed: bool = True


ALLOWED_EXTRA = (
    Allowed(
        r"body\.(Id|Status|ProviderName|DateTimeUTC)",
        (200,),
        "Accounting's envelope: every Accounting example in the spec carries Id, Status, ProviderName "
        "and DateTimeUTC; the envelope schemas (Contacts, Invoices, …) declare only the collection",
    ),
    Allowed(
        r"body\.\w+\[\*\]\.(Date|DueDate)String",
        (200,),
        "Xero's examples of Invoices, PurchaseOrders and BankTransfers carry DateString/DueDateString "
        "beside /Date(…)/ (the product reads either: actions.common.iso_day)",
    ),
    Allowed(
        r"body\.Elements\[\*\]\.\w+",
        (400,),
        "a ValidationException echoes each refused element whole (Xero's POST /Contacts 400 example: "
        "Name, EmailAddress, Addresses, HasValidationErrors …); the Element schema lists only the ids "
        "and ValidationErrors",
    ),
)

# Schema problems allowed, with the reason: (operation id, status, a fragment of the problem).
ALLOWED_PROBLEMS: dict[tuple[str, int, str], str] = {
    ("GET /Connections", 200, "is not a 'date-time'"): "Xero's own example sends createdDateUtc and "
    "updatedDateUtc without an offset (2019-12-07T18:46:19.5165400), which format date-time refuses; "
    "the sandbox copies the example (the product reads neither date)",
}


# ----------------------------------------------------------------------------- the spec
def operation_spec(op: Operation) -> dict[str, Any]:
    raw, _ = _spec(op.spec)
    return dict(raw["paths"][op.path][op.method.lower()])


def declared_statuses(op: Operation) -> tuple[int, ...]:
    return tuple(sorted(int(s) for s in operation_spec(op)["responses"] if s.isdigit()))


def response_content(op: Operation, status: int) -> dict[str, Any]:
    raw, _ = _spec(op.spec)
    response = _resolve(raw, operation_spec(op)["responses"][str(status)])
    return dict(response.get("content", {}).get("application/json", {}))


def spec_example(op: Operation, status: int = 200) -> Any:
    content = response_content(op, status)
    if "example" not in content:
        return None
    example = content["example"]
    if isinstance(example, str):  # identity's example is the JSON text itself
        return json.loads(example)
    # A fresh copy, as it comes over the wire (YAML reads an unquoted timestamp as a datetime).
    return json.loads(json.dumps(example, default=lambda value: value.isoformat()))


def template_of(method: str, url: str) -> Operation | None:
    path = urlsplit(url).path
    for op in OPERATIONS:
        prefix = PREFIX[op.spec]
        if op.method != method or not path.lower().startswith(prefix.lower()):
            continue
        rest = path[len(prefix) :]
        if rest and _shape_matches(op.path, rest):
            return op
    return None


# ------------------------------------------------------------------------- the recording
@dataclass
class Exchange:
    method: str
    url: str
    headers: dict[str, str]
    json: Any
    status: int
    response_headers: dict[str, str]
    text: str
    # Requests made on purpose to be refused are not checked against the request schemas.
    refused_on_purpose: bool = False

    def body(self) -> Any:
        try:
            return json.loads(self.text) if self.text else None
        except ValueError:
            return self.text


class Exchanges(httpx.BaseTransport):
    """Passes requests to the sandbox and keeps every api.xero.com request with its answer."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.seen: list[Exchange] = []
        self.refusing = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        response = self.inner.handle_request(request)
        if request.url.host == "api.xero.com":
            response.read()
            headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
            body = json.loads(request.content) if request.content else None
            self.seen.append(
                Exchange(
                    request.method,
                    str(request.url),
                    headers,
                    body,
                    response.status_code,
                    dict(response.headers),
                    response.text,
                    self.refusing,
                )
            )
        return response


@dataclass
class Scenario:
    exchanges: list[Exchange]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of(self, op: Operation, status: int) -> list[Exchange]:
        return [e for e in self.exchanges if e.status == status and template_of(e.method, e.url) is op]


def _run(ctx: ActionContext, name: str, fields: dict[str, Any]) -> Any:
    spec = registry()[name]
    return spec.run(ctx, spec.input_model.model_validate(fields))


def _refused(call: Any) -> str:
    with pytest.raises(PermanentError) as caught:
        call()
    return str(caught.value)


@pytest.fixture(scope="module")
def scenario() -> Iterator[Scenario]:
    spec_dir()  # skip (or fail under CI) before building anything
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for name, value in {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "STATE_TABLE": STATE_TABLE,
            "XERO_SECRET_ID": SECRET_ID,
        }.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        reset_settings()
        reset_clients()
        create_state_table(STATE_TABLE)
        clock = FakeClock()
        sandbox = XeroSandbox(clock=clock)
        secret = sandbox.bootstrap_secret()
        boto3.client("secretsmanager").create_secret(Name=SECRET_ID, SecretString=json.dumps(secret))
        transport = Exchanges(sandbox)
        with use_transport(transport):
            yield _drive(sandbox, clock, secret, transport)
    reset_settings()
    reset_clients()


def _drive(sandbox: XeroSandbox, clock: FakeClock, secret: dict[str, Any], transport: Exchanges) -> Scenario:
    from clientary_xero.connectors.xero import oauth, triggers
    from clientary_xero.connectors.xero.auth import XeroTokenProvider

    provider = XeroTokenProvider(SECRET_ID, SecretStore(), StateStore(), clock=clock)
    xero = XeroClient(provider)
    links = StateStore()
    out: dict[str, Any] = {}

    def ctx(step: str, attempt: int = 1) -> ActionContext:
        return ActionContext(
            run_id="run-1",
            step_id=step,
            idempotency_key=f"run-1:{step}:0",
            attempt=attempt,
            links=links,
            factories={"xero": lambda: xero},
        )

    def twice(step: str, name: str, fields: dict[str, Any]) -> Any:
        """The step, then its retry (which looks up what the first try made and adopts it)."""
        first = _run(ctx(step), name, fields)
        again = _run(ctx(step, attempt=2), name, fields)
        out[name] = (first, again)
        return first

    contact = twice("contact", "xero.create_or_update_contact", {"Name": "Acme Ltd", "ContactNumber": "CL-1"})
    supplier = _run(ctx("supplier"), "xero.create_or_update_contact", {"Name": "Parts Co"})
    out["find_contact_by_id"] = _run(ctx("fc1"), "xero.find_contact", {"ContactID": contact["ContactID"]})
    out["find_contact_by_name"] = _run(ctx("fc2"), "xero.find_contact", {"Name": "Acme Ltd"})
    lines = [
        {"Description": "Work", "Quantity": 2, "UnitAmount": 50, "AccountCode": "200", "TaxType": "TAX001"}
    ]
    invoice = twice(
        "invoice",
        "xero.create_invoice",
        {
            "Type": "ACCREC",
            "Contact": {"ContactID": contact["ContactID"]},
            "Status": "AUTHORISED",
            "Date": "2026-01-05",
            "DueDate": "2026-02-05",
            "InvoiceNumber": "INV-100",
            "LineItems": lines,
        },
    )
    out["find_invoice_by_id"] = _run(ctx("fi1"), "xero.find_invoice", {"InvoiceID": invoice["InvoiceID"]})
    out["find_invoice_by_number"] = _run(ctx("fi2"), "xero.find_invoice", {"InvoiceNumber": "INV-100"})
    twice("note", "xero.add_note_to_invoice", {"InvoiceID": invoice["InvoiceID"], "Details": "Sent by post"})
    # The poll's first run records the watermark; the payment after it is new on the second.
    poll = _poll(triggers, xero, links, clock)
    poll.commit()
    clock.advance(60)
    twice(
        "payment",
        "xero.create_payment",
        {
            "Invoice": {"InvoiceID": invoice["InvoiceID"]},
            "Account": {"Code": "090"},
            "Amount": 40,
            "Date": "2026-01-09",
            "Reference": "Cheque 1",
        },
    )
    clock.advance(60)
    out["poll"] = _poll(triggers, xero, links, clock).records
    out["contact_record"] = triggers.fetch_record(xero, "xero.contact_updated", contact["ContactID"])
    out["invoice_record"] = triggers.fetch_record(xero, "xero.invoice_created", invoice["InvoiceID"])
    twice(
        "quote",
        "xero.create_quote",
        {
            "Contact": {"ContactID": contact["ContactID"]},
            "Date": "2026-01-05",
            "QuoteNumber": "QU-1",
            "LineItems": lines,
        },
    )
    order = twice(
        "order",
        "xero.create_purchase_order",
        {
            "Contact": {"ContactID": supplier["ContactID"]},
            "Date": "2026-01-05",
            "PurchaseOrderNumber": "PO-9",
            "LineItems": [{"Description": "Bolts", "Quantity": 10, "UnitAmount": 1.5, "AccountCode": "400"}],
        },
    )
    out["find_order_by_id"] = _run(
        ctx("fp1"), "xero.find_purchase_order", {"PurchaseOrderID": order["PurchaseOrderID"]}
    )
    out["find_order_by_status"] = _run(ctx("fp2"), "xero.find_purchase_order", {"Status": "DRAFT"})
    item = {"Code": "BOLT", "Name": "Bolt", "SalesDetails": {"UnitPrice": 2.5, "AccountCode": "200"}}
    twice("items", "xero.add_stock_items", {"Items": [item]})
    twice("new-items", "xero.add_stock_items", {"Items": [{"Code": "NUT", "Name": "Nut"}], "Mode": "create"})
    twice(
        "transfer",
        "xero.create_bank_transfer",
        {
            "FromBankAccount": {"Code": "090"},
            "ToBankAccount": {"Code": "091"},
            "Amount": 25,
            "Date": "2026-01-06",
            "Reference": "Float",
        },
    )
    twice(
        "project",
        "xero.create_project",
        {"ContactID": contact["ContactID"], "Name": "Website", "EstimateAmount": 1000},
    )
    out["balance_sheet"] = _run(ctx("bs"), "xero.get_balance_sheet", {"Date": "2026-01-31"})
    out["profit_and_loss"] = _run(
        ctx("pnl"), "xero.get_profit_and_loss", {"FromDate": "2026-01-01", "ToDate": "2026-01-31"}
    )
    out["organisation"] = oauth.organisation_name(secret["access_token"], secret["tenant_id"])
    out["connections"] = oauth.list_connections(secret["access_token"])
    successes = len(transport.seen)

    # The 400s the spec declares, as the product's client meets them (summarizeErrors=true where the
    # product sends false, so the element errors become Xero's all-or-nothing ValidationException).
    transport.refusing = True
    strict = {"summarizeErrors": "true"}
    unknown = "6f9619ff-8b86-d011-b42d-00cf4fc964ff"
    refusals = {
        "POST /Contacts": lambda: xero.request(
            "POST", "/Contacts", params=strict, json={"Contacts": [{"Name": ""}]}, idempotency_key="e1"
        ),
        "PUT /Invoices": lambda: xero.request(
            "PUT",
            "/Invoices",
            params=strict,
            json={"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": unknown}, "LineItems": lines}]},
            idempotency_key="e2",
        ),
        "PUT /Invoices/{InvoiceID}/History": lambda: xero.request(
            "PUT",
            f"/Invoices/{invoice['InvoiceID']}/History",
            json={"HistoryRecords": [{"Details": "x" * 251}]},
            idempotency_key="e3",
        ),
        "PUT /Payments": lambda: xero.request(
            "PUT",
            "/Payments",
            params=strict,
            json={
                "Payments": [
                    {
                        "Invoice": {"InvoiceID": invoice["InvoiceID"]},
                        "Account": {"Code": "090"},
                        "Amount": 1e6,
                    }
                ]
            },
            idempotency_key="e4",
        ),
        "PUT /Quotes": lambda: xero.request(
            "PUT",
            "/Quotes",
            params=strict,
            json={"Quotes": [{"Contact": {"ContactID": unknown}, "Date": "2026-01-05", "LineItems": lines}]},
            idempotency_key="e5",
        ),
        "PUT /PurchaseOrders": lambda: xero.request(
            "PUT",
            "/PurchaseOrders",
            params=strict,
            json={"PurchaseOrders": [{"Contact": {"ContactID": unknown}, "LineItems": lines}]},
            idempotency_key="e6",
        ),
        "POST /Items": lambda: xero.request(
            "POST",
            "/Items",
            params=strict,
            json={"Items": [{"Code": "X", "Name": "n" * 51}]},
            idempotency_key="e7",
        ),
        "PUT /Items": lambda: xero.request(
            "PUT", "/Items", params=strict, json={"Items": [{"Code": "BOLT"}]}, idempotency_key="e8"
        ),
        "PUT /BankTransfers": lambda: xero.request(
            "PUT",
            "/BankTransfers",
            json={
                "BankTransfers": [
                    {"FromBankAccount": {"Code": "090"}, "ToBankAccount": {"Code": "200"}, "Amount": 5}
                ]
            },
            idempotency_key="e9",
        ),
        "GET /Projects": lambda: xero.request("GET", "/Projects", params={"page": "first"}, api="projects"),
        "POST /Projects": lambda: xero.request(
            "POST", "/Projects", json={"name": ""}, idempotency_key="e10", api="projects"
        ),
    }
    out["refusals"] = {name: _refused(call) for name, call in refusals.items()}

    # The answers no operation declares: an unknown id, and the in-flight limit.
    out["not_found"] = _refused(lambda: xero.request("GET", f"/Contacts/{unknown}"))
    sandbox.concurrent_limit = 0
    with pytest.raises(RetryableError) as limited:
        xero.request("GET", "/Contacts")
    sandbox.concurrent_limit = 5
    sandbox.fail_next(429, headers={"X-Rate-Limit-Problem": "minute", "Retry-After": "7"})
    with pytest.raises(RetryableError) as minute:
        xero.request("GET", "/Invoices")
    out["limited"] = (limited.value, minute.value)
    transport.refusing = False
    scenario = Scenario(transport.seen, out)
    out["successes"] = transport.seen[:successes]
    return scenario


def _poll(triggers: Any, xero: XeroClient, state: StateStore, clock: FakeClock) -> Any:
    from clientary_xero.connectors.http import get_transport

    headers = triggers.HeaderTransport(get_transport())
    client = XeroClient(xero.tokens, transport=headers)
    return triggers.poll_new_payments(client, headers, state, now=datetime.fromtimestamp(clock(), UTC))


# ------------------------------------------------------------------- the list is complete
_LAYER = Path(__file__).resolve().parents[1] / "shared" / "clientary_xero" / "connectors" / "xero"


def _calls_in_source() -> set[tuple[str, str]]:
    """(method, path) of every ``….request("METHOD", "/path" | f"/path/{x}")`` and every literal
    ``https://api.xero.com/…`` URL in the product's Xero connector, path parameters as ``{}``."""
    found: set[tuple[str, str]] = set()
    for source in sorted(_LAYER.rglob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for scope in [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))]:
            found |= _calls_in(scope)
    return found


def _calls_in(scope: ast.AST) -> set[tuple[str, str]]:
    # A path held in a local name first (path = f"/Invoices/{id}/History"; request("GET", path)).
    names = {
        target.id: node.value
        for node in ast.walk(scope)
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.JoinedStr))
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found: set[tuple[str, str]] = set()
    for node in ast.walk(scope):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("request", "get", "post"):
            args = node.args
            if getattr(node.func, "attr", "") == "request" and len(args) >= 2:
                method, path = args[0], args[1]
                if isinstance(path, ast.Name) and path.id in names:
                    path = names[path.id]
                if isinstance(method, ast.Constant) and isinstance(method.value, str):
                    found.add((method.value.upper(), _path_text(path)))
            elif args and isinstance(args[0], ast.Constant) and "api.xero.com" in str(args[0].value):
                verb = node.func.attr.upper()  # type: ignore[attr-defined]
                found.add((verb, "/" + str(args[0].value).split("api.xero.com/", 1)[1]))
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            # CONNECTIONS_URL = "https://api.xero.com/connections" (used with http.get)
            text = str(node.value.value)
            if text.startswith("https://api.xero.com/") and "/2.0" not in text:
                found.add(("GET", "/" + text.split("api.xero.com/", 1)[1]))
    return found


def _path_text(node: ast.expr) -> str:
    if isinstance(node, ast.Constant):
        return "/" + str(node.value).lstrip("/")
    if isinstance(node, ast.JoinedStr):
        text = "".join(str(v.value) if isinstance(v, ast.Constant) else "{}" for v in node.values)
        return "/" + text.lstrip("/")
    return "{}"  # a computed path


def _normal(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path).lower().removeprefix("/api.xro/2.0")


def test_the_list_is_every_call_the_product_makes() -> None:
    from clientary_xero.connectors.xero.triggers import _FETCH

    listed = {(op.method, _normal(op.path)) for op in OPERATIONS}
    # A computed collection (the triggers' f"{path}/{id}") is read from its table instead.
    in_source = {(m, _normal(p)) for m, p in _calls_in_source() if not p.startswith(("{}", "/{}"))}
    # The webhook triggers read f"{collection}/{id}" from their table.
    in_source |= {("GET", _normal(f"/{collection}/{{}}")) for collection, *_ in _FETCH.values()}
    assert in_source - listed == set(), "calls the product makes that OPERATIONS does not list"
    assert listed - in_source == set(), "OPERATIONS lists calls the product no longer makes"


def test_the_scenario_sends_every_listed_operation_and_nothing_else(scenario: Scenario) -> None:
    sent = {template_of(e.method, e.url) for e in scenario.exchanges}
    assert None not in sent, [e.url for e in scenario.exchanges if template_of(e.method, e.url) is None]
    assert {op.id for op in OPERATIONS} - {op.id for op in sent if op} == set()


def test_the_statuses_listed_are_the_ones_the_spec_declares() -> None:
    spec_dir()
    assert {op.id: declared_statuses(op) for op in OPERATIONS} == {op.id: op.statuses for op in OPERATIONS}


def test_the_product_s_requests_conform_to_the_spec(scenario: Scenario) -> None:
    records = [
        {"method": e.method, "url": e.url, "headers": e.headers, "json": e.json}
        for e in scenario.exchanges
        if not e.refused_on_purpose
    ]
    assert validate_requests(records) == []


# ------------------------------------------------------------------- answers vs schemas
def _validated(op: Operation, exchange: Exchange) -> list[str]:
    from tests.xero_contract import _problem_text, _Request, _Response

    _, api = _spec(op.spec)
    request = _Request(
        exchange.url, exchange.method, {"xero-tenant-id": "t", "Authorization": "Bearer x"}, exchange.json
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            api.validate_response(request, _Response(exchange.status, exchange.body(), None))
    except Exception as exc:
        return [_problem_text(exc)]
    return []


def _extra_fields(op: Operation, status: int, body: Any) -> list[str]:
    raw, _ = _spec(op.spec)
    schema = response_content(op, status).get("schema")
    found: list[str] = []
    unknown_fields(raw, schema, body, "body", found)
    return [re.sub(r"\[\d+\]", "[*]", f.split(":")[0]) for f in found]


@pytest.mark.parametrize(
    ("op", "status"),
    [(op, status) for op in OPERATIONS for status in op.statuses],
    ids=[f"{op.id} {status}" for op in OPERATIONS for status in op.statuses],
)
def test_each_answer_fits_its_response_schema(scenario: Scenario, op: Operation, status: int) -> None:
    exchanges = scenario.of(op, status)
    assert exchanges, f"the scenario never got a {status} from {op.id}"
    problems: list[str] = []
    extra: set[str] = set()
    for exchange in exchanges:
        assert exchange.response_headers.get("content-type", "").startswith("application/json")
        problems += [
            p
            for p in _validated(op, exchange)
            if not any(k[:2] == (op.id, status) and k[2] in p for k in ALLOWED_PROBLEMS)
        ]
        extra |= {f for f in _extra_fields(op, status, exchange.body()) if _allowed(op, status, f) is None}
    assert problems == [], f"{op.id} → {status} does not fit the schema"
    assert sorted(extra) == [], f"{op.id} → {status} sends fields its schema does not declare"


def _allowed(op: Operation, status: int, path: str) -> Allowed | None:
    return next((a for a in ALLOWED_EXTRA if status in a.statuses and re.fullmatch(a.pattern, path)), None)


def test_the_allow_list_is_still_needed_and_true(scenario: Scenario) -> None:
    sent = {
        (op.id, status, path)
        for op in OPERATIONS
        for status in op.statuses
        for e in scenario.of(op, status)
        for path in _extra_fields(op, status, e.body())
    }
    in_examples = {
        path
        for op in OPERATIONS
        for status in op.statuses
        if spec_example(op, status) is not None
        for path in _extra_fields(op, status, spec_example(op, status))
    }
    for allowed in ALLOWED_EXTRA:
        assert any(re.fullmatch(allowed.pattern, p) for _, s, p in sent if s in allowed.statuses), (
            f"the sandbox no longer sends {allowed.pattern}: remove it from ALLOWED_EXTRA"
        )
        if allowed.example_backed:
            assert any(re.fullmatch(allowed.pattern, p) for p in in_examples), (
                f"no Xero example carries {allowed.pattern}: its reason does not hold"
            )
    for op_id, status, fragment in ALLOWED_PROBLEMS:
        op = BY_ID[op_id]
        problems = [p for e in scenario.of(op, status) for p in _validated(op, e)]
        assert any(fragment in p for p in problems), f"ALLOWED_PROBLEMS: {op_id} {status} passes now"


def test_the_refusals_reach_the_product_as_xeros_messages(scenario: Scenario) -> None:
    refusals = scenario.outputs["refusals"]
    assert set(refusals) == {op.id for op in OPERATIONS if 400 in op.statuses}
    assert all("(400)" in text for text in refusals.values()), refusals
    assert refusals["PUT /Invoices/{InvoiceID}/History"].endswith(
        "(400): The Details of a history note must not be more than 250 characters long."
    )
    assert "name: The name field is required." in refusals["POST /Projects"]


def test_the_undeclared_404_and_429_are_xeros_documented_shapes(scenario: Scenario) -> None:
    # reference/xero-api.md: a 404 is a plain sentence, not JSON; a 429 names minute/day/appminute
    # (with Retry-After) or, for the 5-in-flight limit, nothing.
    (missing,) = [e for e in scenario.exchanges if e.status == 404]
    assert missing.text == "The resource you're looking for cannot be found"
    assert missing.response_headers["content-type"].startswith("text/html")
    assert scenario.outputs["not_found"].endswith("(404): The resource you're looking for cannot be found")
    in_flight, minute = [e for e in scenario.exchanges if e.status == 429]
    assert "x-rate-limit-problem" not in in_flight.response_headers
    assert (minute.response_headers["x-rate-limit-problem"], minute.response_headers["retry-after"]) == (
        "minute",
        "7",
    )
    unnamed, named = scenario.outputs["limited"]
    assert (unnamed.limit, unnamed.delay_seconds, named.limit, named.delay_seconds) == (None, 5, "minute", 7)


# ------------------------------------------------------------------------ Xero's examples
class _Answers:
    """Stands in for the Xero client: answers each (method, spec path) with Xero's example."""

    def __init__(self, examples: dict[str, Any]) -> None:
        self.examples = examples
        self.calls: list[str] = []

    def request(self, method: str, path: str, *, api: str = "accounting", **_: Any) -> Any:
        prefix = PREFIX[PROJECTS] if api == "projects" else PREFIX[ACCOUNTING]
        url = f"https://api.xero.com{prefix}/{path.lstrip('/')}"
        op = template_of(method.upper(), url)
        assert op is not None, (method, path)
        self.calls.append(op.id)
        return json.loads(json.dumps(self.examples[op.id]))


def _ex(op_id: str, status: int | None = None) -> Any:
    op = BY_ID[op_id]
    return spec_example(op, status or op.statuses[0])


def _with_examples(
    name: str, fields: dict[str, Any], *op_ids: str, attempt: int = 1
) -> tuple[Any, list[str]]:
    answers = _Answers({op_id: _ex(op_id) for op_id in op_ids})
    ctx = ActionContext(
        run_id="run-1",
        step_id="s",
        idempotency_key="run-1:s:0",
        attempt=attempt,
        links=_NoLinks(),
        factories={"xero": lambda: answers},
    )
    return _run(ctx, name, fields), answers.calls


class _NoLinks:
    def get_link(self, *_: Any) -> None:
        return None

    def put_link(self, *_: Any) -> None:
        return None

    def lock_link(self, *_: Any, **__: Any) -> Any:
        from contextlib import nullcontext
        from types import SimpleNamespace

        return nullcontext(SimpleNamespace(link=None, unchanged=False, write=lambda *a, **k: None))


def test_every_listed_operation_has_xeros_example_or_says_why() -> None:
    spec_dir()
    missing = {op.id for op in OPERATIONS if spec_example(op, op.statuses[0]) is None}
    # The spec ships no ProfitAndLoss example (the BalanceSheet one, same schema, stands in:
    # tests/test_xero_report_shapes.py).
    assert missing == {"GET /Reports/ProfitAndLoss"}


def _first(op_id: str, key: str, index: int = 0) -> dict[str, Any]:
    return dict(_ex(op_id)[key][index])


def _day(record: dict[str, Any], key: str) -> str:
    """Xero's own ``…String`` twin of a ``/Date(…)/`` field, as a day: what the product must read."""
    return str(record[f"{key}String"])[:10]


def test_xeros_contacts_through_find_and_create() -> None:
    listed = _first("GET /Contacts", "Contacts")
    found, calls = _with_examples("xero.find_contact", {"Name": "Katherine Warren"}, "GET /Contacts")
    assert calls == ["GET /Contacts"]
    assert (found["found"], found["count"], len(found["matches"])) == (True, 2, 2)  # pagination.itemCount
    assert {k: found[k] for k in ("ContactID", "Name", "EmailAddress", "FirstName", "IsCustomer")} == {
        "ContactID": listed["ContactID"],
        "Name": "Katherine Warren",
        "EmailAddress": "kat.warren@clampett.com",
        "FirstName": "Katherine",
        "IsCustomer": True,
    }
    assert found["UpdatedDateUTC"] == "2017-08-21T20:49:04.227+00:00"  # /Date(1503348544227+0000)/
    assert found["ContactNumber"] is None and found["DefaultCurrency"] is None

    one = _first("GET /Contacts/{ContactID}", "Contacts")
    by_id, calls = _with_examples(
        "xero.find_contact", {"ContactID": one["ContactID"]}, "GET /Contacts/{ContactID}"
    )
    assert (by_id["found"], by_id["ContactNumber"], by_id["Name"]) == (True, "SB2", "Acme Parts Co.")
    assert calls == ["GET /Contacts/{ContactID}"]

    # Matched first (by name: Xero's listed contacts are others), then created
    made, calls = _with_examples(
        "xero.create_or_update_contact", {"Name": "Bruce Banner"}, "GET /Contacts", "POST /Contacts"
    )
    assert calls == ["GET /Contacts", "POST /Contacts"]
    assert made == {
        "ContactID": "00000000-0000-0000-0000-000000000000",
        "Name": "Bruce Banner",
        "ContactNumber": None,
        "EmailAddress": "bruce@banner.com",
        "ContactStatus": "ACTIVE",
        "created": True,
        "unchanged": False,
        "matched_by": None,
        "archived": False,
        "note": None,
    }


def test_xeros_refused_contact_is_the_product_s_permanent_error() -> None:
    from clientary_xero.connectors.xero.client import xero_messages

    refused = _ex("POST /Contacts", 400)
    assert xero_messages(refused) == [
        "The contact name Buzz Lightyear is already assigned to another contact. The contact name must be "
        "unique across all active contacts."
    ]


def test_xeros_invoices_through_find_create_and_the_webhook_fetch() -> None:
    from clientary_xero.connectors.xero.triggers import fetch_record

    invoices = _ex("GET /Invoices")["Invoices"]
    found, _ = _with_examples("xero.find_invoice", {"InvoiceNumber": "INV-0001"}, "GET /Invoices")
    assert (found["count"], [m["InvoiceNumber"] for m in found["matches"]]) == (
        3,
        ["INV-0001", "INV-0002", "INV-0003"],
    )
    for match, invoice in zip(found["matches"], invoices, strict=True):
        assert (match["Date"], match["DueDate"]) == (_day(invoice, "Date"), _day(invoice, "DueDate"))
        assert (match["Total"], match["TotalTax"], match["AmountPaid"]) == (
            invoice["Total"],
            invoice["TotalTax"],
            invoice["AmountPaid"],
        )
    assert [m["Status"] for m in found["matches"]] == ["VOIDED", "PAID", "AUTHORISED"]
    assert found["matches"][2]["Reference"] is None  # Xero's "" is no reference

    one = _first("GET /Invoices/{InvoiceID}", "Invoices")
    by_id, _ = _with_examples(
        "xero.find_invoice", {"InvoiceID": one["InvoiceID"]}, "GET /Invoices/{InvoiceID}"
    )
    assert (by_id["InvoiceNumber"], by_id["Total"], by_id["AmountDue"], by_id["Date"]) == (
        "INV-0006",
        148062.76,
        0.0,
        "2019-03-07",
    )
    record = fetch_record(
        _Answers({"GET /Invoices/{InvoiceID}": _ex("GET /Invoices/{InvoiceID}")}),
        "xero.invoice_updated",
        one["InvoiceID"],
    )
    assert (record["Date"], record["DueDate"]) == (_day(one, "Date"), _day(one, "DueDate"))
    assert record["Payments"][0]["Date"] == "2019-03-19"  # nested /Date(…)/ too
    assert record["UpdatedDateUTC"].startswith("2019-03-07T")  # a *UTC instant keeps its time

    made, calls = _with_examples(
        "xero.create_invoice",
        {
            "Type": "ACCREC",
            "Contact": {"ContactID": "430fa14a-f945-44d3-9f97-5df5e28441b8"},
            "LineItems": [{"Description": "Website"}],
        },
        "PUT /Invoices",
    )
    assert calls == ["PUT /Invoices"]
    created = _first("PUT /Invoices", "Invoices")
    assert made == {
        "InvoiceID": "ed255415-e141-4150-aab7-89c3bbbb851c",
        "InvoiceNumber": "INV-0007",
        "Type": "ACCREC",
        "Status": "AUTHORISED",
        "ContactID": "430fa14a-f945-44d3-9f97-5df5e28441b8",
        "Date": _day(created, "Date"),
        "DueDate": _day(created, "DueDate"),
        "SubTotal": 40.0,
        "TotalTax": 0.0,
        "Total": 40.0,
        "AmountDue": 40.0,
        "CurrencyCode": "NZD",
        "Reference": "Website Design",
        "created": True,
    }


def test_xeros_contact_through_the_webhook_fetch() -> None:
    from clientary_xero.connectors.xero.triggers import fetch_record

    one = _first("GET /Contacts/{ContactID}", "Contacts")
    record = fetch_record(
        _Answers({"GET /Contacts/{ContactID}": _ex("GET /Contacts/{ContactID}")}),
        "xero.contact_created",
        one["ContactID"],
    )
    assert (record["ContactID"], record["ContactNumber"]) == (one["ContactID"], "SB2")
    assert record["UpdatedDateUTC"] == "2019-03-01T17:02:57.193+00:00"  # /Date(1551459777193+0000)/
    assert record["Addresses"] == one["Addresses"]  # the rest as Xero sent it


def test_xeros_history_through_add_note() -> None:
    answers = _Answers(
        {
            "GET /Invoices/{InvoiceID}/History": _ex("GET /Invoices/{InvoiceID}/History"),
            "PUT /Invoices/{InvoiceID}/History": _ex("PUT /Invoices/{InvoiceID}/History"),
        }
    )
    ctx = ActionContext(
        run_id="r",
        step_id="n",
        idempotency_key="r:n:0",
        attempt=2,
        links=_NoLinks(),
        factories={"xero": lambda: answers},
    )
    out = _run(
        ctx,
        "xero.add_note_to_invoice",
        {"InvoiceID": "a03ffcd2-5d91-4c7e-b483-318584e9e439", "Details": "Hello World"},
    )
    assert answers.calls == ["GET /Invoices/{InvoiceID}/History", "PUT /Invoices/{InvoiceID}/History"]
    # /Date(1550899400362)/ (no offset: UTC) is the example's DateUTCString 2019-02-23T05:23:20.
    assert (out["NotesAdded"], out["DateUTC"], out["created"]) == (1, "2019-02-23T05:23:20.362+00:00", True)
    # A retry that finds its note among Xero's records adds nothing.
    again = _run(
        ctx,
        "xero.add_note_to_invoice",
        {
            "InvoiceID": "a03ffcd2-5d91-4c7e-b483-318584e9e439",
            "Details": _first("GET /Invoices/{InvoiceID}/History", "HistoryRecords", 1)["Details"],
        },
    )
    assert (again["NotesAdded"], again["created"]) == (0, False)


def test_xeros_payments_through_create_and_the_poll() -> None:
    from clientary_xero.connectors.xero.actions.invoices import payment_fields
    from clientary_xero.connectors.xero.triggers import HeaderTransport, poll_new_payments

    # Xero's PUT /Payments example is a refused element (HasValidationErrors): the step fails with
    # Xero's message; the element's fields are still read as a found payment is.
    paid = _first("PUT /Payments", "Payments")
    with pytest.raises(PermanentError) as refused:
        _with_examples(
            "xero.create_payment",
            {"Invoice": {"InvoiceID": paid["Invoice"]["InvoiceID"]}, "Account": {"Code": "970"}, "Amount": 1},
            "PUT /Payments",
        )
    assert refused.value.messages == ["Payment amount exceeds the amount outstanding on this document"]
    out = payment_fields(paid, created=True)
    assert out == {
        "PaymentID": "61ed71fc-01bf-4eb8-8419-8a18789ff45f",
        "InvoiceID": "c7c37b83-ac95-45ea-88ba-8ad83a5f22fe",
        "InvoiceNumber": "INV-0004",
        "Amount": 1.0,
        "Date": "2019-03-12",  # /Date(1552348800000+0000)/
        "Status": "AUTHORISED",
        "PaymentType": "ACCRECPAYMENT",
        "Reference": None,
        "AccountID": "5690f1e8-1d02-4893-90c2-ee1a69eff942",
        "AccountCode": "970",
        "CurrencyRate": 1.0,
        "InvoiceStatus": "AUTHORISED",
        "InvoiceAmountDue": 229.0,
        "created": True,
    }

    class Cursor:
        def __init__(self) -> None:
            self.value = {"schema": 1, "watermark": "2018-01-01T00:00:00+00:00", "seen": {}, "_version": 1}

        def get_cursor(self, name: str) -> dict[str, Any]:
            return self.value

        def put_cursor(self, name: str, cursor: dict[str, Any]) -> None:
            self.value = cursor

    answers = _Answers({"GET /Payments": _ex("GET /Payments")})
    batch = poll_new_payments(
        answers,
        HeaderTransport(httpx.MockTransport(lambda r: httpx.Response(500))),
        Cursor(),
        now=datetime(2019, 4, 1, tzinfo=UTC),
    )
    assert answers.calls == ["GET /Payments"]  # pageCount 1: one page
    listed = _ex("GET /Payments")["Payments"]
    # Oldest first, by UpdatedDateUTC; every /Date(…)/ as ISO.
    assert [r["PaymentID"] for r in batch.records] == [listed[0]["PaymentID"], listed[1]["PaymentID"]]
    first = batch.records[0]
    assert (first["Date"], first["UpdatedDateUTC"], first["Amount"]) == (
        "2018-11-29",
        "2018-11-02T16:36:32.690+00:00",
        46.0,
    )
    assert first["BatchPayment"]["Date"] == "2019-03-14"
    assert batch.cursor["watermark"] == "2019-03-05T18:59:06.173000+00:00"


def test_xeros_quotes_and_purchase_orders_through_the_mappers() -> None:
    from clientary_xero.connectors.xero.actions.documents import purchase_order_fields, quote_fields

    made, _ = _with_examples(
        "xero.create_quote",
        {
            "Contact": {"ContactID": "6a65f055-b0e0-471a-a933-d1ffdd89393f"},
            "Date": "2020-02-01",
            "LineItems": [{"Description": "Foobar"}],
        },
        "PUT /Quotes",
    )
    assert (made["QuoteID"], made["QuoteNumber"], made["Status"], made["Date"], made["ExpiryDate"]) == (
        "60031d53-6488-4321-9cbd-c1db6dbf9ba4",
        "QU-0008",
        "DRAFT",
        "2020-02-01",
        None,
    )
    assert (made["Total"], made["CurrencyCode"], made["created"]) == (20.0, "USD", True)
    quote = _first("GET /Quotes", "Quotes")
    found = quote_fields(quote, created=False)
    assert (found["Date"], found["ExpiryDate"]) == (_day(quote, "Date"), _day(quote, "ExpiryDate"))
    assert (found["SubTotal"], found["TotalTax"], found["Total"], found["Title"]) == (
        17.96,
        2.69,
        20.65,
        "Your Quote",
    )

    one = _first("GET /PurchaseOrders/{PurchaseOrderID}", "PurchaseOrders")
    by_id, calls = _with_examples(
        "xero.find_purchase_order",
        {"PurchaseOrderID": one["PurchaseOrderID"]},
        "GET /PurchaseOrders/{PurchaseOrderID}",
    )
    assert calls == ["GET /PurchaseOrders/{PurchaseOrderID}"]
    assert (by_id["PurchaseOrderNumber"], by_id["Date"], by_id["DeliveryDate"], by_id["Total"]) == (
        "PO-0006",
        _day(one, "Date"),
        _day(one, "DeliveryDate"),
        2587.5,
    )
    listed, _ = _with_examples("xero.find_purchase_order", {"Status": "DELETED"}, "GET /PurchaseOrders")
    assert (listed["count"], [m["PurchaseOrderNumber"] for m in listed["matches"]]) == (
        2,
        ["PO-0001", "PO-0002"],
    )
    # Xero's PUT /PurchaseOrders example is refused (StatusAttributeString ERROR, with a warning).
    with pytest.raises(PermanentError) as refused:
        _with_examples(
            "xero.create_purchase_order",
            {
                "Contact": {"ContactID": "430fa14a-f945-44d3-9f97-5df5e28441b8"},
                "LineItems": [{"Description": "Foobar"}],
            },
            "PUT /PurchaseOrders",
        )
    assert refused.value.messages == ["Order number must be unique"]
    created = purchase_order_fields(_first("PUT /PurchaseOrders", "PurchaseOrders"))
    assert (created["PurchaseOrderNumber"], created["Date"], created["TotalTax"], created["Total"]) == (
        "PO-0004",
        "2019-03-13",
        3.0,
        23.0,
    )


def test_xeros_items_and_their_validation_errors() -> None:
    from clientary_xero.connectors.xero.actions.inventory import _item_fields

    guitars = _item_fields(_first("GET /Items", "Items"), created=False)
    assert (guitars["Code"], guitars["Name"], guitars["SalesUnitPrice"], guitars["PurchaseUnitPrice"]) == (
        "123",
        "Guitars",
        5000.0,
        None,
    )
    assert guitars["UpdatedDateUTC"] == "2019-03-07T17:57:56.267+00:00"
    # Xero's own POST/PUT /Items examples carry a ValidationErrors entry: the step fails with it.
    runs = {
        "POST /Items": ({"Items": [{"Code": "abc65591"}], "Mode": "upsert"}, ("GET /Items", "POST /Items")),
        "PUT /Items": ({"Items": [{"Code": "NEW"}], "Mode": "create"}, ("PUT /Items",)),
    }
    for op_id, (fields, answered) in runs.items():
        with pytest.raises(PermanentError) as refused:
            _with_examples("xero.add_stock_items", fields, *answered)
        assert refused.value.messages == ["Price List Item with Code ''abc'' already exists"], op_id


def test_xeros_bank_transfers_through_create_and_the_retry() -> None:
    made, _ = _with_examples(
        "xero.create_bank_transfer",
        {"FromBankAccount": {"Code": "090"}, "ToBankAccount": {"Code": "088"}, "Amount": 50},
        "PUT /BankTransfers",
    )
    assert made == {
        "BankTransferID": "76eea4b6-f026-464c-b6f3-5fb39a196145",
        "Amount": 50.0,
        "Date": "2019-02-27",
        "FromBankAccountID": "7e5e243b-9fcd-4aef-8e3a-c70be1e39bfa",
        "FromBankAccountCode": "090",
        "ToBankAccountID": "6f7594f2-f059-4d56-9e67-47ac9733bfe9",
        "ToBankAccountCode": "088",
        "FromBankTransactionID": "e4059952-5acb-4a56-b076-53fad85f2930",
        "ToBankTransactionID": "88e4ac17-293b-4e5a-8d8b-3ce3a0b1ee17",
        "Reference": "Sub 098801",
        "CurrencyRate": 1.0,
        "Status": "AUTHORISED",
        "created": True,
    }
    # A retry finds Xero's listed transfers (AccountID and Name only) and reads their codes from
    # GET /Accounts: the example's accounts are not the step's, so nothing is adopted and it fails.
    with pytest.raises(PermanentError) as differs:
        _with_examples(
            "xero.create_bank_transfer",
            {
                "FromBankAccount": {"Code": "090"},
                "ToBankAccount": {"Code": "091"},
                "Amount": 20,
                "Reference": "Sub 098801",
            },
            "GET /BankTransfers",
            "GET /Accounts",
            attempt=2,
        )
    assert "bank transfer" in str(differs.value)


def test_xeros_projects_through_create_and_the_retry() -> None:
    made, calls = _with_examples(
        "xero.create_project",
        {"ContactID": "216830cb-9a68-487e-928b-c1a7ccc4fc81", "Name": "New Kitchen"},
        "POST /Projects",
    )
    assert calls == ["POST /Projects"]
    project = _ex("POST /Projects")
    assert made == {
        "ProjectID": "ed957eee-bc6f-4f52-a663-aa42e6af9620",
        "ContactID": "216830cb-9a68-487e-928b-c1a7ccc4fc81",
        "Name": "New Kitchen",
        "Status": project["status"],
        "CurrencyCode": "AUD",
        "DeadlineUtc": project["deadlineUtc"],
        "Estimate": project["estimate"]["value"],
        "TotalInvoiced": 0.0,
        "TotalToBeInvoiced": 0.0,
        "MinutesLogged": 0,
        "created": True,
    }
    listed = _first("GET /Projects", "items")
    again, calls = _with_examples(
        "xero.create_project",
        {
            "ContactID": listed["contactId"],
            "Name": listed["name"],
            "EstimateAmount": 99.99,
            "DeadlineUtc": "2020-03-03T15:00:00Z",
        },
        "GET /Projects",
        attempt=2,
    )
    assert calls == ["GET /Projects"]
    assert (again["ProjectID"], again["TotalToBeInvoiced"], again["MinutesLogged"], again["created"]) == (
        "b021e7cb-1903-4292-b48b-5b27b4271e3e",
        559.0,
        180,
        False,
    )


def test_xeros_balance_sheet_through_the_report_action() -> None:
    sheet, _ = _with_examples("xero.get_balance_sheet", {"Date": "2019-04-30"}, "GET /Reports/BalanceSheet")
    assert (sheet["ReportName"], sheet["ReportDate"], sheet["Columns"]) == (
        "Balance Sheet",
        "2019-04-12",
        ["30 Apr 2019", "31 Mar 2019", "28 Feb 2019"],
    )
    assert sheet["Totals"]["Total Assets"] == 179533.09
    assert sheet["UpdatedDateUTC"] == "2019-04-12T20:03:32.778+00:00"  # /Date(1555099412778)/


def test_xeros_organisation_and_connections_through_the_connect_flow() -> None:
    from clientary_xero.connectors.http import use_transport
    from clientary_xero.connectors.xero import oauth

    def answer(request: httpx.Request) -> httpx.Response:
        op = template_of(request.method, str(request.url))
        assert op is not None
        return httpx.Response(200, json=_ex(op.id))

    with use_transport(httpx.MockTransport(answer)):
        assert oauth.organisation_name("token", "tenant") == "Dev Evangelist - Sid Test 3 (NZ-2016-02)"
        (connection,) = oauth.list_connections("token")
    assert (connection["tenantId"], connection["tenantName"], connection["tenantType"]) == (
        "fe79f7dd-b6d4-4a92-ba7b-538af6289c58",
        "Demo Company (NZ)",
        "ORGANISATION",
    )
