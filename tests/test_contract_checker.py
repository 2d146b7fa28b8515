"""The contract checker itself must catch what it is there to catch (it guards every Xero test)."""

from __future__ import annotations

from tests.xero_contract import validate_requests

TENANT = {"xero-tenant-id": "00000000-0000-0000-0000-000000000001", "Idempotency-Key": "k"}


def request(method: str, path: str, body: object = None) -> dict[str, object]:
    return {
        "method": method,
        "url": f"https://api.xero.com/api.xro/2.0{path}",
        "headers": TENANT,
        "json": body,
    }


def test_a_conforming_request_passes() -> None:
    assert (
        validate_requests([request("PUT", "/Contacts?summarizeErrors=false", {"Contacts": [{"Name": "A"}]})])
        == []
    )


def test_a_misspelt_body_field_is_flagged() -> None:
    (problem,) = validate_requests(
        [request("PUT", "/Contacts", {"Contacts": [{"Name": "A", "ContactNumbr": "1"}]})]
    )
    assert "body.Contacts[0].ContactNumbr: not a field of the schema" in problem


def test_a_bad_enum_and_a_bad_path_uuid_are_flagged() -> None:
    problems = validate_requests(
        [
            request("PUT", "/Invoices", {"Invoices": [{"Type": "SALES", "Contact": {"ContactID": "x"}}]}),
            request("GET", "/Invoices/not-a-uuid"),
        ]
    )
    assert len(problems) == 2
    assert "request 2: GET /api.xro/2.0/Invoices/not-a-uuid" in problems[1]


def test_a_sibling_path_template_is_accepted() -> None:
    # /PurchaseOrders/{PurchaseOrderNumber} and /PurchaseOrders/{PurchaseOrderID} share a shape.
    assert (
        validate_requests(
            [
                request("GET", "/PurchaseOrders/PO-0001"),
                request("GET", "/PurchaseOrders/5f5fa6c1-0a1b-4a5c-9d7e-1f2e3d4c5b6a"),
            ]
        )
        == []
    )


def test_a_missing_tenant_header_is_flagged() -> None:
    record = request("GET", "/Contacts")
    record["headers"] = {}
    assert len(validate_requests([record])) == 1
