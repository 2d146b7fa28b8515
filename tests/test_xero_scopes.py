# ruff: noqa: F811  (pytest fixtures imported from tests.conftest_xero are parameters here)
"""Scopes: the Xero sandbox refuses a call the token's scopes do not grant, as Xero does (401
AuthorizationUnsuccessful), and the product fails such a step at once with "reconnect … scope".

The sandbox's table (local/xero_sandbox/scopes.py) and the product's (connectors/xero/scopes.py plus each
action's declared ``scopes``) are written apart on purpose; the last tests check they agree for
every call every Xero action makes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from clientary_xero.connectors.base import registry
from clientary_xero.connectors.xero.client import XeroClient
from clientary_xero.connectors.xero.scopes import XeroScopeMissing, broad, call_scopes
from clientary_xero.local.environment import LocalEnvironment
from clientary_xero.local.xero_sandbox import DEFAULT_SCOPES, XeroSandbox
from clientary_xero.local.xero_sandbox import scopes as xero_scopes
from clientary_xero.settings import Settings
from tests.conftest_xero import (  # noqa: F401
    AwsEnv,
    FakeClock,
    Recorded,
    aws,
    clock,
    make_context,
    make_provider,
    recorder,
    sandbox,
)

ACCOUNTING = "https://api.xero.com/api.xro/2.0"
PROJECTS = "https://api.xero.com/projects.xro/2.0"
GUID = "6f9619ff-8b86-d011-b42d-00cf4fc964ff"
REFUSED = {"Type": None, "Title": "Unauthorized", "Status": 401, "Detail": "AuthorizationUnsuccessful"}
# A scope that grants none of the calls below (the token must carry something).
UNRELATED = "offline_access accounting.attachments"

# (method, url, broad scope, granular scope): reference/xero-api.md §2 and §3.3.
TABLE = [
    ("GET", f"{ACCOUNTING}/Contacts", "accounting.contacts", "accounting.contacts"),
    ("PUT", f"{ACCOUNTING}/Contacts", "accounting.contacts", "accounting.contacts"),
    ("GET", f"{ACCOUNTING}/Invoices", "accounting.transactions", "accounting.invoices"),
    ("PUT", f"{ACCOUNTING}/Invoices", "accounting.transactions", "accounting.invoices"),
    ("POST", f"{ACCOUNTING}/Invoices/{GUID}", "accounting.transactions", "accounting.invoices"),
    ("GET", f"{ACCOUNTING}/CreditNotes", "accounting.transactions", "accounting.invoices"),
    ("GET", f"{ACCOUNTING}/Quotes", "accounting.transactions", "accounting.invoices"),
    ("PUT", f"{ACCOUNTING}/Quotes", "accounting.transactions", "accounting.invoices"),
    ("GET", f"{ACCOUNTING}/PurchaseOrders", "accounting.transactions", "accounting.invoices"),
    ("PUT", f"{ACCOUNTING}/PurchaseOrders", "accounting.transactions", "accounting.invoices"),
    ("GET", f"{ACCOUNTING}/Payments", "accounting.transactions", "accounting.payments"),
    ("PUT", f"{ACCOUNTING}/Payments", "accounting.transactions", "accounting.payments"),
    ("GET", f"{ACCOUNTING}/BankTransfers", "accounting.transactions", "accounting.banktransactions"),
    ("PUT", f"{ACCOUNTING}/BankTransfers", "accounting.transactions", "accounting.banktransactions"),
    # Items: accounting.settings, and under granular scopes accounting.invoices as well.
    ("GET", f"{ACCOUNTING}/Items", "accounting.settings", "accounting.invoices"),
    ("PUT", f"{ACCOUNTING}/Items", "accounting.settings", "accounting.invoices"),
    ("POST", f"{ACCOUNTING}/Items", "accounting.settings", "accounting.settings"),
    ("GET", f"{ACCOUNTING}/Accounts", "accounting.settings", "accounting.settings"),
    ("GET", f"{ACCOUNTING}/TaxRates", "accounting.settings", "accounting.settings"),
    ("GET", f"{ACCOUNTING}/TrackingCategories", "accounting.settings", "accounting.settings"),
    ("GET", f"{ACCOUNTING}/Organisation", "accounting.settings", "accounting.settings"),
    (
        "GET",
        f"{ACCOUNTING}/Reports/BalanceSheet",
        "accounting.reports.read",
        "accounting.reports.balancesheet.read",
    ),
    (
        "GET",
        f"{ACCOUNTING}/Reports/ProfitAndLoss",
        "accounting.reports.read",
        "accounting.reports.profitandloss.read",
    ),
    # History and notes take the parent document's scope.
    ("GET", f"{ACCOUNTING}/Invoices/{GUID}/History", "accounting.transactions", "accounting.invoices"),
    ("PUT", f"{ACCOUNTING}/Invoices/{GUID}/History", "accounting.transactions", "accounting.invoices"),
    ("GET", f"{PROJECTS}/Projects", "projects", "projects"),
    ("POST", f"{PROJECTS}/Projects", "projects", "projects"),
]
IDS = [f"{m} {u.split('/2.0', 1)[1]}" for m, u, _, _ in TABLE]


def call(sandbox: XeroSandbox, scopes: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One call with a fresh connection granted ``scopes`` (no body: a write is refused or 400)."""
    secret = sandbox.bootstrap_secret(scopes=scopes)
    headers = {"Authorization": f"Bearer {secret['access_token']}", "xero-tenant-id": secret["tenant_id"]}
    if method != "GET":
        headers["Idempotency-Key"] = f"key-{len(sandbox.requests)}"
    with httpx.Client(transport=sandbox) as client:
        return client.request(method, url, headers=headers, **kwargs)


# ------------------------------------------------------------------------------ the sandbox
@pytest.mark.parametrize(("method", "url", "broad_scope", "granular"), TABLE, ids=IDS)
def test_the_sandbox_refuses_each_endpoint_without_its_scope_and_grants_broad_or_granular(
    sandbox: XeroSandbox, method: str, url: str, broad_scope: str, granular: str
) -> None:
    refused = call(sandbox, UNRELATED, method, url)
    assert (refused.status_code, refused.json()) == (401, REFUSED)
    for scope in (broad_scope, granular):
        answer = call(sandbox, f"offline_access {scope}", method, url)
        assert answer.status_code != 401, (scope, answer.text)


WRITES = [row for row in TABLE if row[0] != "GET"]


@pytest.mark.parametrize(
    ("method", "url", "broad_scope", "granular"),
    WRITES,
    ids=[f"{m} {u.split('/2.0', 1)[1]}" for m, u, _, _ in WRITES],
)
def test_a_read_scope_grants_get_but_not_put_or_post(
    sandbox: XeroSandbox, method: str, url: str, broad_scope: str, granular: str
) -> None:
    for scope in (granular + ".read", broad_scope + ".read"):
        read = call(sandbox, f"offline_access {scope}", "GET", url)
        assert read.status_code != 401, (scope, read.text)
        write = call(sandbox, f"offline_access {scope}", method, url)
        assert (write.status_code, write.json()) == (401, REFUSED), scope


def test_items_are_not_granted_by_the_broad_transactions_scope(sandbox: XeroSandbox) -> None:
    # Broad-scope apps reach Items through accounting.settings only (the spec's security).
    answer = call(sandbox, "offline_access accounting.transactions", "GET", f"{ACCOUNTING}/Items")
    assert (answer.status_code, answer.json()) == (401, REFUSED)


def test_connections_need_no_scope_and_a_refused_call_changes_nothing(sandbox: XeroSandbox) -> None:
    assert call(sandbox, "offline_access", "GET", "https://api.xero.com/connections").status_code == 200
    secret = sandbox.bootstrap_secret(scopes="offline_access accounting.contacts.read")
    body = {"Contacts": [{"Name": "Acme Ltd"}]}
    headers = {
        "Authorization": f"Bearer {secret['access_token']}",
        "xero-tenant-id": secret["tenant_id"],
        "Idempotency-Key": "k1",
    }
    with httpx.Client(transport=sandbox) as client:
        answer = client.put(f"{ACCOUNTING}/Contacts", json=body, headers=headers)
    assert answer.status_code == 401 and sandbox.contacts(secret["tenant_id"]) == []


def test_a_custom_connection_has_the_scopes_its_token_asked_for(sandbox: XeroSandbox) -> None:
    sandbox.bootstrap_secret(client_id="custom", auth="client_credentials", scopes="accounting.contacts")
    secret = sandbox.bootstrap_secret(client_id="custom", auth="client_credentials", scopes="")
    with httpx.Client(transport=sandbox) as client:

        def token(scope: str | None) -> str:
            form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
            answer = client.post(
                "https://identity.xero.com/connect/token",
                data=form,
                auth=(secret["client_id"], secret["client_secret"]),
            )
            return str(answer.json()["access_token"])

        def invoices(access: str) -> int:
            answer = client.get(f"{ACCOUNTING}/Invoices", headers={"Authorization": f"Bearer {access}"})
            return answer.status_code

        assert invoices(token("accounting.contacts")) == 401
        assert invoices(token("accounting.contacts accounting.invoices.read")) == 200
        assert invoices(token(None)) == 200  # no scope asked for: every scope of the connection


def test_the_sandbox_grants_the_products_default_scopes() -> None:
    assert Settings().xero_scopes == DEFAULT_SCOPES
    assert XeroSandbox().bootstrap_secret()["scopes"] == DEFAULT_SCOPES


# ------------------------------------------------------------------------------- the client
def connect(sandbox: XeroSandbox, aws: AwsEnv, granted: str, **secret_fields: Any) -> dict[str, Any]:
    """A connection the sandbox grants ``granted``, stored (with ``secret_fields`` over it)."""
    secret = sandbox.bootstrap_secret(scopes=granted)
    secret.update(secret_fields)
    aws.write_secret(secret)
    return secret


def api_calls(sandbox: XeroSandbox, method: str, path: str) -> int:
    return sum(
        1
        for r in sandbox.requests
        if r["method"] == method and r["url"].split("?")[0] == f"{ACCOUNTING}{path}"
    )


def test_a_missing_scope_fails_at_once_naming_the_scope_to_reconnect_with(
    sandbox: XeroSandbox, aws: AwsEnv, recorder: Recorded, make_provider: Any
) -> None:
    connect(sandbox, aws, "offline_access accounting.contacts accounting.settings")
    client = XeroClient(make_provider())
    with pytest.raises(XeroScopeMissing) as caught:
        client.request("GET", "/Invoices")
    message = str(caught.value)
    assert message.startswith("Xero refused GET /Invoices (401 AuthorizationUnsuccessful): the connection")
    assert (
        "lacks the scope accounting.invoices (or accounting.invoices.read, accounting.transactions" in message
    )
    assert "reconnect Xero with that scope" in message and "clientary-xero connect xero" in message
    assert caught.value.status == 401 and caught.value.messages == ["AuthorizationUnsuccessful"]
    # One call, no token refresh: a refresh cannot add a scope.
    assert api_calls(sandbox, "GET", "/Invoices") == 1 and sandbox.refresh_count == 0

    with pytest.raises(XeroScopeMissing) as write:
        client.request("PUT", "/Invoices", json={"Invoices": []}, idempotency_key="k")
    assert "lacks the scope accounting.invoices (or accounting.transactions) — reconnect" in str(write.value)


def test_a_refusal_despite_a_recorded_scope_does_not_claim_the_scope_is_missing(
    sandbox: XeroSandbox, aws: AwsEnv, recorder: Recorded, make_provider: Any
) -> None:
    # The secret says accounting.invoices was granted, but Xero (here: the grant) refuses it.
    connect(sandbox, aws, "offline_access accounting.contacts", scopes=DEFAULT_SCOPES)
    with pytest.raises(XeroScopeMissing) as caught:
        XeroClient(make_provider()).request("GET", "/Invoices")
    message = str(caught.value)
    assert "although the connection was granted accounting.invoices" in message
    assert "lacks" not in message and sandbox.refresh_count == 0


# ------------------------------------------------------------------------- a workflow step
def test_a_step_without_its_scope_fails_after_one_attempt_with_reconnect(tmp_path: Path) -> None:
    from clientary_xero.workflows.loader import read_document

    workflow = (
        Path(__file__).resolve().parents[1] / "shared/clientary_xero/local/samples/invoice_to_xero.yaml"
    )
    scopes = "offline_access accounting.contacts accounting.settings"  # no accounting.invoices
    with LocalEnvironment(max_attempts=3, xero_scopes=scopes) as env:
        env.put_workflow(read_document(workflow))
        env.poll("clientary.new_invoice")
        client = env.clientary.seed_client("Acme Builders")
        env.clientary.add_invoice(client["id"], [{"title": "Survey", "quantity": 2, "price": 95.0}], status=1)
        env.poll("clientary.new_invoice")
        env.drain()
        (run,) = env.state.list_runs()
        assert run["status"] == "FAILED" and run["failed_step"] == "invoice"
        message = run["error"]["message"]
        assert "lacks the scope accounting.invoices (or accounting.transactions)" in message
        assert "reconnect Xero with that scope" in message
        steps = {s["step_id"]: s for s in env.state.get_steps(run["run_id"])}
        assert steps["contact"]["status"] == "SUCCEEDED"
        assert steps["invoice"]["attempts"] == 1
        assert api_calls(env.xero, "PUT", "/Invoices") == 1  # no retry
        assert env.xero.refresh_count == 0  # no refresh loop
        assert env.dlq_messages("xero") == []
        assert env.xero.invoices(env.xero_tenant_id()) == []


# ------------------------------------------------------- the two tables agree, every action
def _prepare(client: XeroClient, sandbox: XeroSandbox, tenant: str) -> dict[str, str]:
    """Records the actions work on, made with every scope: a contact, an AUTHORISED invoice, a PO."""
    acme = sandbox.seed_contact(tenant, Name="Acme Ltd", ContactNumber="CL-7")
    line = {"Description": "Work", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200"}
    invoice = _run(
        client,
        "xero.create_invoice",
        {
            "Type": "ACCREC",
            "Contact": {"ContactID": acme["ContactID"]},
            "Status": "AUTHORISED",
            "Date": "2026-01-10",
            "LineItems": [line],
        },
        step="setup-invoice",
    )
    order = _run(
        client,
        "xero.create_purchase_order",
        {
            "Contact": {"ContactID": acme["ContactID"]},
            "Date": "2026-01-12",
            "LineItems": [{**line, "AccountCode": "710"}],
        },
        step="setup-po",
    )
    return {
        "contact": acme["ContactID"],
        "invoice": invoice["InvoiceID"],
        "order": order["PurchaseOrderNumber"],
    }


def _inputs(ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    line = {"Description": "Work", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200"}
    by_number = {"ContactNumber": "CL-7"}
    return {
        "xero.create_or_update_contact": {"Name": "Beta Ltd", "ContactNumber": "CL-9"},
        "xero.find_contact": {"ContactNumber": "CL-7"},
        "xero.create_invoice": {
            "Type": "ACCREC",
            "Contact": by_number,
            "Date": "2026-01-20",
            "Reference": "scoped",
            "LineItems": [line],
        },
        "xero.find_invoice": {"InvoiceID": ids["invoice"]},
        "xero.add_note_to_invoice": {"InvoiceID": ids["invoice"], "Details": "Synced"},
        "xero.create_payment": {
            "Invoice": {"InvoiceID": ids["invoice"]},
            "Account": {"Code": "090"},
            "Amount": 10,
            "Date": "2026-01-20",
        },
        "xero.create_quote": {"Contact": by_number, "Date": "2026-02-01", "LineItems": [line]},
        "xero.create_purchase_order": {
            "Contact": by_number,
            "Date": "2026-03-13",
            "LineItems": [{**line, "AccountCode": "710"}],
        },
        "xero.find_purchase_order": {"PurchaseOrderNumber": ids["order"]},
        "xero.add_stock_items": {"Items": [{"Code": "SERVICE", "Name": "Hourly work"}]},
        "xero.create_bank_transfer": {
            "FromBankAccount": {"Code": "090"},
            "ToBankAccount": {"Code": "091"},
            "Amount": 50,
            "Date": "2026-01-31",
            "Reference": "Sub 1",
        },
        "xero.create_project": {"ContactID": ids["contact"], "Name": "New Kitchen"},
        "xero.get_balance_sheet": {"Date": "2026-01-31"},
        "xero.get_profit_and_loss": {"FromDate": "2026-01-01", "ToDate": "2026-01-31"},
    }


XERO_ACTIONS = sorted(name for name, spec in registry().items() if spec.app == "xero")


def _run(
    client: XeroClient, name: str, fields: dict[str, Any], *, step: str = "step", attempt: int = 1
) -> Any:
    spec = registry()[name]
    return spec.run(
        make_context(client, step_id=step, attempt=attempt), spec.input_model.model_validate(fields)
    )


def test_every_xero_action_declares_scopes_the_default_connection_grants() -> None:
    default = set(Settings().xero_scopes.split())
    assert XERO_ACTIONS and set(_inputs({"invoice": "", "order": "", "contact": ""})) == set(XERO_ACTIONS)
    for name in XERO_ACTIONS:
        declared = registry()[name].scopes
        assert declared, f"{name} declares no scopes"
        for scope in declared:
            assert scope in default or scope.removesuffix(".read") in default, (name, scope)


@pytest.mark.parametrize("kind", ["granular", "broad"])
@pytest.mark.parametrize("name", XERO_ACTIONS)
def test_each_action_works_with_exactly_its_declared_scopes_and_both_tables_agree_on_its_calls(
    sandbox: XeroSandbox, aws: AwsEnv, recorder: Recorded, make_provider: Any, name: str, kind: str
) -> None:
    full = connect(sandbox, aws, DEFAULT_SCOPES)
    ids = _prepare(XeroClient(make_provider()), sandbox, full["tenant_id"])
    declared = registry()[name].scopes
    granted = declared if kind == "granular" else tuple(broad(s) for s in declared)
    limited = sandbox.bootstrap_secret(
        tenant_id=full["tenant_id"], scopes=" ".join(("offline_access", *granted))
    )
    aws.write_secret(limited)
    client = XeroClient(make_provider())
    before = len(sandbox.requests)
    fields = _inputs(ids)[name]
    _run(client, name, fields)  # the sandbox enforces: a missing declaration fails here
    _run(client, name, fields, attempt=2)  # a retry's lookups too
    calls = [r for r in sandbox.requests[before:] if r["url"].startswith("https://api.xero.com/")]
    assert calls
    for record in calls:
        url = record["url"].split("?")[0]
        path = url[len("https://api.xero.com") :]
        api, relative = (
            ("projects", url[len(PROJECTS) :])
            if url.startswith(PROJECTS)
            else (
                "accounting",
                url[len(ACCOUNTING) :],
            )
        )
        enforced = xero_scopes.granting_scopes(record["method"], path)
        assert set(call_scopes(record["method"], relative, api)) == set(enforced or ()), (
            record["method"],
            path,
        )


@pytest.mark.parametrize(("method", "url", "broad_scope", "granular"), TABLE, ids=IDS)
def test_the_products_table_names_the_scopes_the_sandbox_enforces(
    method: str, url: str, broad_scope: str, granular: str
) -> None:
    path = url[len("https://api.xero.com") :]
    api, relative = (
        ("projects", url[len(PROJECTS) :])
        if url.startswith(PROJECTS)
        else (
            "accounting",
            url[len(ACCOUNTING) :],
        )
    )
    product = call_scopes(method, relative, api)
    assert set(product) == set(xero_scopes.granting_scopes(method, path) or ())
    assert {broad_scope, granular} <= set(product)
