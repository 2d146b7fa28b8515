"""The Xero sandbox behaves like Xero: tokens, tenancy, limits, idempotency, validation, shapes."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from clientary_xero.local.xero_sandbox import XeroSandbox
from tests.conftest_xero import FakeClock, clock, sandbox  # noqa: F401
from tests.xero_contract import validate_response

API = "https://api.xero.com/api.xro/2.0"
TOKEN_URL = "https://identity.xero.com/connect/token"


class Org:
    """An httpx client on the sandbox with one connected organisation."""

    def __init__(self, sandbox: XeroSandbox) -> None:  # noqa: F811
        self.sandbox = sandbox
        self.secret = sandbox.bootstrap_secret()
        self.tenant = self.secret["tenant_id"]
        self.http = httpx.Client(transport=sandbox)
        self.keys = 0

    def headers(self, **extra: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.secret['access_token']}",
            "xero-tenant-id": self.tenant,
            "Accept": "application/json",
            **extra,
        }

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(API + path, params=params, headers=self.headers())

    def write(
        self,
        method: str,
        path: str,
        body: Any,
        *,
        key: str | None = None,
        summarize: bool | None = False,
        **params: Any,
    ) -> httpx.Response:
        if summarize is not None:
            params["summarizeErrors"] = str(summarize).lower()
        if key is None:
            self.keys += 1
            key = f"key-{self.keys}"
        return self.http.request(
            method, API + path, params=params, json=body, headers=self.headers(**{"Idempotency-Key": key})
        )

    def token(self, **form: str) -> httpx.Response:
        return self.http.post(
            TOKEN_URL, data=form, auth=(self.secret["client_id"], self.secret["client_secret"])
        )

    def contact(self, **fields: Any) -> dict[str, Any]:
        response = self.write("PUT", "/Contacts", {"Contacts": [fields]})
        assert response.status_code == 200, response.text
        element = response.json()["Contacts"][0]
        assert element["StatusAttributeString"] == "OK", element
        return element

    def invoice(self, **fields: Any) -> httpx.Response:
        return self.write("PUT", "/Invoices", {"Invoices": [fields]}, unitdp="4")


@pytest.fixture
def org(sandbox: XeroSandbox) -> Org:  # noqa: F811
    return Org(sandbox)


def _messages(element: dict[str, Any]) -> list[str]:
    return [v["Message"] for v in element.get("ValidationErrors", [])]


# --------------------------------------------------------------------- OAuth
def test_refresh_rotates_and_allows_the_old_token_for_a_30_minute_grace(org: Org, clock: FakeClock) -> None:  # noqa: F811
    first = org.token(grant_type="refresh_token", refresh_token=org.secret["refresh_token"])
    assert first.status_code == 200
    pair = first.json()
    assert pair["expires_in"] == 1800 and pair["token_type"] == "Bearer"
    assert pair["refresh_token"] != org.secret["refresh_token"]
    assert pair["access_token"] != org.secret["access_token"]

    clock.advance(29 * 60)
    again = org.token(grant_type="refresh_token", refresh_token=org.secret["refresh_token"]).json()
    assert (again["access_token"], again["refresh_token"]) == (pair["access_token"], pair["refresh_token"])

    clock.advance(2 * 60)
    late = org.token(grant_type="refresh_token", refresh_token=org.secret["refresh_token"])
    assert (late.status_code, late.json()) == (400, {"error": "invalid_grant"})
    assert org.sandbox.refresh_count == 2 and org.sandbox.invalid_grants == 1
    # The rotated token still works.
    assert org.token(grant_type="refresh_token", refresh_token=pair["refresh_token"]).status_code == 200


def test_token_endpoint_wants_basic_client_credentials(org: Org) -> None:
    wrong = org.http.post(
        TOKEN_URL,
        data={"grant_type": "refresh_token", "refresh_token": org.secret["refresh_token"]},
        auth=(org.secret["client_id"], "not-the-secret"),
    )
    in_body = org.http.post(
        TOKEN_URL,
        data={
            "grant_type": "refresh_token",
            "refresh_token": org.secret["refresh_token"],
            "client_id": org.secret["client_id"],
            "client_secret": org.secret["client_secret"],
        },
    )
    assert (wrong.status_code, wrong.json()) == (401, {"error": "invalid_client"})
    assert (in_body.status_code, in_body.json()) == (401, {"error": "invalid_client"})
    assert org.sandbox.refresh_count == 0


def test_authorization_codes_are_single_use_and_short_lived(org: Org, clock: FakeClock) -> None:  # noqa: F811
    client_id = org.secret["client_id"]
    code = org.sandbox.issue_code(client_id, tenant_ids=[org.tenant], redirect_uri="http://localhost/cb")
    wrong_redirect = org.token(
        grant_type="authorization_code", code=code, redirect_uri="http://localhost/other"
    )
    assert wrong_redirect.json() == {"error": "invalid_grant"}
    ok = org.token(grant_type="authorization_code", code=code, redirect_uri="http://localhost/cb")
    assert ok.status_code == 200 and {"access_token", "refresh_token"} <= set(ok.json())
    reused = org.token(grant_type="authorization_code", code=code, redirect_uri="http://localhost/cb")
    assert reused.json() == {"error": "invalid_grant"}

    late = org.sandbox.issue_code(client_id, tenant_ids=[org.tenant])
    clock.advance(301)
    assert org.token(grant_type="authorization_code", code=late).json() == {"error": "invalid_grant"}

    connections = org.http.get(
        "https://api.xero.com/connections", headers={"Authorization": f"Bearer {ok.json()['access_token']}"}
    )
    assert [c["tenantId"] for c in connections.json()] == [org.tenant]


def test_custom_connections_use_client_credentials_and_need_no_tenant_header(sandbox: XeroSandbox) -> None:  # noqa: F811
    secret = sandbox.bootstrap_secret(client_id="custom-app", auth="client_credentials")
    assert "refresh_token" not in secret
    http = httpx.Client(transport=sandbox)
    token = http.post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, auth=("custom-app", secret["client_secret"])
    )
    assert token.status_code == 200 and "refresh_token" not in token.json()
    answer = http.get(
        f"{API}/Organisation", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    assert answer.status_code == 200
    assert answer.json()["Organisations"][0]["OrganisationID"] == secret["tenant_id"]

    standard = sandbox.bootstrap_secret(client_id="standard-app")
    refused = http.post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, auth=("standard-app", standard["client_secret"])
    )
    assert refused.json() == {"error": "unauthorized_client"}


def test_an_expired_access_token_gets_401_token_expired(org: Org, clock: FakeClock) -> None:  # noqa: F811
    clock.advance(1801)
    answer = org.get("/Contacts")
    assert answer.status_code == 401
    assert answer.json() == {"Type": None, "Title": "Unauthorized", "Status": 401, "Detail": "TokenExpired"}
    unknown = org.http.get(
        f"{API}/Contacts", headers={"Authorization": "Bearer nope", "xero-tenant-id": org.tenant}
    )
    assert unknown.json()["Detail"] == "TokenExpired"


def test_the_tenant_header_is_required_and_must_be_connected(org: Org) -> None:
    missing = org.http.get(
        f"{API}/Contacts", headers={"Authorization": f"Bearer {org.secret['access_token']}"}
    )
    other = org.sandbox.create_tenant("Someone Else Ltd")
    foreign = org.http.get(
        f"{API}/Contacts",
        headers={"Authorization": f"Bearer {org.secret['access_token']}", "xero-tenant-id": other},
    )
    assert missing.status_code == 403 and foreign.status_code == 403


def test_other_hosts_are_unreachable(sandbox: XeroSandbox) -> None:  # noqa: F811
    with pytest.raises(httpx.ConnectError):
        httpx.Client(transport=sandbox).get("https://example.com/")


# ------------------------------------------------------------------- limits
def test_minute_limit_answers_429_with_retry_after_and_recovers(org: Org, clock: FakeClock) -> None:  # noqa: F811
    remaining = []
    for _ in range(60):
        answer = org.get("/Contacts")
        assert answer.status_code == 200
        remaining.append(int(answer.headers["X-MinLimit-Remaining"]))
        assert "X-DayLimit-Remaining" in answer.headers and "X-AppMinLimit-Remaining" in answer.headers
    assert remaining[0] == 59 and remaining[-1] == 0
    clock.advance(15)
    refused = org.get("/Contacts")
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "minute"
    assert int(refused.headers["Retry-After"]) == 45
    clock.advance(45)
    assert org.get("/Contacts").status_code == 200


def test_day_limit(clock: FakeClock) -> None:  # noqa: F811
    org = Org(XeroSandbox(clock=clock, day_limit=3))
    assert [org.get("/Contacts").status_code for _ in range(3)] == [200, 200, 200]
    refused = org.get("/Contacts")
    assert refused.status_code == 429 and refused.headers["X-Rate-Limit-Problem"] == "day"
    assert int(refused.headers["Retry-After"]) > 60
    assert refused.headers["X-DayLimit-Remaining"] == "0"


def test_at_most_five_calls_in_flight_per_organisation(clock: FakeClock) -> None:  # noqa: F811
    org = Org(XeroSandbox(clock=clock, latency=0.3))
    statuses: list[int] = []
    problems: list[str] = []
    barrier = threading.Barrier(8)

    def call() -> None:
        barrier.wait()
        answer = org.get("/Contacts")
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            problems.append(
                answer.headers.get("X-Rate-Limit-Problem", "") + answer.headers.get("Retry-After", "")
            )

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(200) == 5 and statuses.count(429) == 3
    assert problems.count("") == 3  # Xero documents no X-Rate-Limit-Problem value for this limit
    assert org.sandbox.max_in_flight == 5


def test_fail_next_injects_a_fault_once(org: Org) -> None:
    org.sandbox.fail_next(503)
    assert org.get("/Contacts").status_code == 503
    assert org.get("/Contacts").status_code == 200
    org.sandbox.fail_next(429, headers={"Retry-After": "7", "X-Rate-Limit-Problem": "minute"}, count=2)
    assert [org.get("/Contacts").headers.get("Retry-After") for _ in range(3)] == ["7", "7", None]


# -------------------------------------------------------------- idempotency
def test_same_key_and_request_returns_the_cached_answer(org: Org, clock: FakeClock) -> None:  # noqa: F811
    body = {"Contacts": [{"Name": "Acme Ltd"}]}
    first = org.write("PUT", "/Contacts", body, key="step-1")
    clock.advance(5 * 60)
    second = org.write("PUT", "/Contacts", body, key="step-1")
    assert second.json()["Contacts"][0]["ContactID"] == first.json()["Contacts"][0]["ContactID"]
    assert len(org.sandbox.contacts(org.tenant)) == 1

    different = org.write("PUT", "/Contacts", {"Contacts": [{"Name": "Other"}]}, key="step-1")
    assert different.status_code == 400
    assert different.json()["Message"] == "Idempotency Key: step-1 is used with a different request."
    too_long = org.write("PUT", "/Contacts", {"Contacts": [{"Name": "Long"}]}, key="k" * 129)
    assert too_long.status_code == 400
    assert len(org.sandbox.contacts(org.tenant)) == 1

    clock.advance(2 * 60)  # 7 minutes after the first call: the key has expired
    expired = org.write("PUT", "/Contacts", body, key="step-1")
    assert expired.status_code == 200
    assert _messages(expired.json()["Contacts"][0]) == [
        "The contact name Acme Ltd is already assigned to another contact. "
        "The contact name must be unique across all active contacts."
    ]


def test_a_concurrent_duplicate_waits_for_the_first_answer(clock: FakeClock) -> None:  # noqa: F811
    org = Org(XeroSandbox(clock=clock, latency=0.2))
    ids: list[str] = []

    def create() -> None:
        answer = org.write("PUT", "/Contacts", {"Contacts": [{"Name": "Same Co"}]}, key="same")
        ids.append(answer.json()["Contacts"][0]["ContactID"])

    threads = [threading.Thread(target=create) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1 and len(ids) == 3
    assert len(org.sandbox.contacts(org.tenant)) == 1


# ------------------------------------------------------------------ contacts
def test_contact_validation_with_summarize_errors_false(org: Org) -> None:
    org.contact(Name="Taken Ltd")
    answer = org.write(
        "PUT",
        "/Contacts",
        {
            "Contacts": [
                {"Name": ""},
                {"Name": "taken ltd"},
                {"Name": "Fine", "ContactNumber": "x" * 51},
                {"Name": "New Co"},
            ]
        },
    )
    assert answer.status_code == 200
    elements = answer.json()["Contacts"]
    assert [e["StatusAttributeString"] for e in elements] == ["ERROR", "ERROR", "ERROR", "OK"]
    assert [e["HasValidationErrors"] for e in elements] == [True, True, True, False]
    assert _messages(elements[0]) == ["Contact Name cannot be empty."]
    assert "is already assigned to another contact" in _messages(elements[1])[0]
    assert "ContactNumber" in _messages(elements[2])[0]
    assert sorted(c["Name"] for c in org.sandbox.contacts(org.tenant)) == ["New Co", "Taken Ltd"]


def test_without_summarize_errors_a_failure_is_a_400_that_hides_what_was_created(org: Org) -> None:
    answer = org.write("PUT", "/Contacts", {"Contacts": [{"Name": "Good Co"}, {"Name": " "}]}, summarize=None)
    assert answer.status_code == 400
    body = answer.json()
    assert (body["ErrorNumber"], body["Type"], body["Message"]) == (
        10,
        "ValidationException",
        "A validation exception occurred",
    )
    assert [_messages(e) for e in body["Elements"]] == [["Contact Name cannot be empty."]]
    assert [c["Name"] for c in org.sandbox.contacts(org.tenant)] == ["Good Co"]  # created anyway


def test_archived_contacts_do_not_hold_their_name(org: Org) -> None:
    old = org.contact(Name="Reused Name")
    archived = org.write(
        "POST", "/Contacts", {"Contacts": [{"ContactID": old["ContactID"], "ContactStatus": "ARCHIVED"}]}
    )
    assert archived.json()["Contacts"][0]["ContactStatus"] == "ARCHIVED"
    assert org.contact(Name="Reused Name")["ContactID"] != old["ContactID"]


def test_bad_json_and_wrong_envelopes(org: Org) -> None:
    bad = org.http.put(
        f"{API}/Contacts",
        content=b"{not json",
        headers=org.headers(**{"Idempotency-Key": "bad", "Content-Type": "application/json"}),
    )
    assert bad.status_code == 400 and bad.json()["Type"] == "PostDataInvalidException"
    for body in ([{"Name": "Bare array"}], {"Name": "No envelope"}, {"Contacts": []}):
        answer = org.write("PUT", "/Contacts", body)
        assert answer.status_code == 400 and answer.json()["Type"] == "NoDataProcessedException"
    assert org.sandbox.contacts(org.tenant) == []


def test_post_updates_by_contact_id_and_keeps_other_fields(org: Org) -> None:
    made = org.contact(Name="Acme", EmailAddress="a@acme.test", ContactNumber="CL-1")
    updated = org.write(
        "POST", "/Contacts", {"Contacts": [{"ContactID": made["ContactID"], "FirstName": "Ann"}]}
    )
    element = updated.json()["Contacts"][0]
    assert (element["Name"], element["EmailAddress"], element["FirstName"]) == ("Acme", "a@acme.test", "Ann")
    single = org.write("POST", f"/Contacts/{made['ContactID']}", {"Contacts": [{"Name": ""}]}, summarize=None)
    assert single.status_code == 400
    assert _messages(single.json()["Elements"][0]) == ["Contact Name cannot be empty."]
    assert (
        org.write(
            "POST", f"/Contacts/{'0' * 8}-0000-0000-0000-{'0' * 12}", {"Contacts": [{}]}, summarize=None
        ).status_code
        == 404
    )
    assert len(org.sandbox.contacts(org.tenant)) == 1


def test_contact_queries(org: Org) -> None:
    acme = org.contact(Name="Acme Ltd", ContactNumber="CL-1", EmailAddress="ap@acme.test")
    org.contact(Name="Beta Inc", ContactNumber="CL-2", EmailAddress="ap@beta.test")
    org.contact(Name='Quote "Co"', FirstName="Quincy")

    def names(**params: Any) -> list[str]:
        answer = org.get("/Contacts", **params)
        assert answer.status_code == 200, answer.text
        return [c["Name"] for c in answer.json()["Contacts"]]

    assert names(where='ContactNumber=="CL-1"') == ["Acme Ltd"]
    assert names(where='Name=="beta inc"') == ["Beta Inc"]
    assert names(where='EmailAddress=="ap@beta.test" AND ContactNumber=="CL-2"') == ["Beta Inc"]
    assert names(where='EmailAddress=="ap@beta.test" AND ContactNumber=="CL-1"') == []
    assert names(where='Name=="Quote \\"Co\\""') == ['Quote "Co"']
    assert names(where='Name.StartsWith("A") OR ContactNumber=="CL-2"') == ["Acme Ltd", "Beta Inc"]
    assert names(searchTerm="quin") == ['Quote "Co"']
    assert names(IDs=acme["ContactID"]) == ["Acme Ltd"]
    assert names(page="1", pageSize="2") == ["Acme Ltd", "Beta Inc"]
    assert org.get("/Contacts", page="2", pageSize="2").json()["pagination"] == {
        "page": 2,
        "pageSize": 2,
        "pageCount": 2,
        "itemCount": 3,
    }
    assert org.get(f"/Contacts/{acme['ContactID']}").json()["Contacts"][0]["Name"] == "Acme Ltd"
    assert org.get("/Contacts/CL-2").json()["Contacts"][0]["Name"] == "Beta Inc"
    assert org.get("/Contacts/CL-404").status_code == 404
    assert org.get("/Contacts", where="Name=Acme").status_code == 400


# ------------------------------------------------------------------ invoices
def test_invoice_totals_numbers_and_dates(org: Org) -> None:
    contact = org.contact(Name="Acme Ltd", ContactNumber="CL-1")
    answer = org.invoice(
        Type="ACCREC",
        Contact={"ContactID": contact["ContactID"]},
        Date="2026-01-31",
        DueDate="2026-02-28",
        LineItems=[
            {"Description": "Design", "Quantity": 3, "UnitAmount": 33.3333},
            {"Description": "Hosting", "Quantity": 1.5, "UnitAmount": 10.005, "DiscountRate": 10},
        ],
    )
    assert answer.status_code == 200, answer.text
    invoice = answer.json()["Invoices"][0]
    assert invoice["InvoiceNumber"] == "INV-0001" and invoice["Status"] == "DRAFT"
    assert [li["LineAmount"] for li in invoice["LineItems"]] == [100.0, 13.51]
    assert (invoice["SubTotal"], invoice["TotalTax"], invoice["Total"], invoice["AmountDue"]) == (
        113.51,
        0.0,
        113.51,
        113.51,
    )
    assert invoice["Date"] == "/Date(1769817600000+0000)/" and invoice["DateString"] == "2026-01-31T00:00:00"
    assert invoice["DueDateString"] == "2026-02-28T00:00:00"
    assert invoice["Contact"]["ContactID"] == contact["ContactID"]

    second = org.invoice(
        Type="ACCREC", Contact={"ContactNumber": "CL-1"}, LineItems=[{"Description": "More"}]
    )
    assert second.json()["Invoices"][0]["InvoiceNumber"] == "INV-0002"
    assert org.sandbox.contacts(org.tenant)[0]["IsCustomer"] is True


def test_invoice_validation_messages(org: Org) -> None:
    contact = org.contact(Name="Acme Ltd")
    ref = {"ContactID": contact["ContactID"]}
    org.invoice(Type="ACCREC", Contact=ref, InvoiceNumber="CL-42", LineItems=[{"Description": "x"}])
    cases = {
        "Invoice # must be unique.": {
            "Type": "ACCREC",
            "Contact": ref,
            "InvoiceNumber": "cl-42",
            "LineItems": [{"Description": "y"}],
        },
        "The description field is mandatory for each line item.": {
            "Type": "ACCREC",
            "Contact": ref,
            "LineItems": [{"Quantity": 1}],
        },
        "A Contact must be specified for this type of transaction": {
            "Type": "ACCREC",
            "LineItems": [{"Description": "z"}],
        },
        "Invoice Type must be specified.": {"Contact": ref, "LineItems": [{"Description": "z"}]},
    }
    for message, invoice in cases.items():
        element = org.invoice(**invoice).json()["Invoices"][0]
        assert (element["HasErrors"], element["StatusAttributeString"]) == (True, "ERROR")
        assert message in _messages(element), (message, element)
    unknown = org.invoice(
        Type="ACCREC",
        Contact={"ContactID": "6f9619ff-8b86-d011-b42d-00cf4fc964ff"},
        LineItems=[{"Description": "z"}],
    )
    assert "could not be found" in _messages(unknown.json()["Invoices"][0])[0]
    # Bills may repeat a number (suppliers number their own bills).
    for _ in range(2):
        bill = org.invoice(
            Type="ACCPAY",
            Contact=ref,
            InvoiceNumber="SUP-1",
            LineItems=[{"Description": "b", "UnitAmount": 5}],
        )
        assert bill.json()["Invoices"][0]["StatusAttributeString"] == "OK"
    assert len(org.sandbox.invoices(org.tenant)) == 3


def test_invoice_queries_and_upsert(org: Org) -> None:
    acme = org.contact(Name="Acme Ltd", ContactNumber="CL-1")
    beta = org.contact(Name="Beta Inc")
    a = org.invoice(
        Type="ACCREC",
        Contact={"ContactID": acme["ContactID"]},
        Reference="R-1",
        LineItems=[{"Description": "a"}],
    ).json()["Invoices"][0]
    b = org.invoice(
        Type="ACCPAY",
        Contact={"ContactID": beta["ContactID"]},
        Status="AUTHORISED",
        LineItems=[{"Description": "b", "UnitAmount": 2}],
    ).json()["Invoices"][0]

    def ids(**params: Any) -> list[str]:
        answer = org.get("/Invoices", **params)
        assert answer.status_code == 200, answer.text
        return [i["InvoiceID"] for i in answer.json()["Invoices"]]

    assert ids(InvoiceNumbers=a["InvoiceNumber"]) == [a["InvoiceID"]]
    assert ids(IDs=f"{a['InvoiceID']},{b['InvoiceID']}") == [a["InvoiceID"], b["InvoiceID"]]
    assert ids(ContactIDs=beta["ContactID"]) == [b["InvoiceID"]]
    assert ids(Statuses="AUTHORISED") == [b["InvoiceID"]]
    assert ids(where='Type=="ACCREC" AND Reference=="R-1"') == [a["InvoiceID"]]
    assert ids(where=f'Contact.ContactID==Guid("{beta["ContactID"]}") AND AmountDue>1') == [b["InvoiceID"]]
    assert ids(where='Contact.ContactNumber=="CL-1"') == [a["InvoiceID"]]
    assert org.get(f"/Invoices/{a['InvoiceID']}").json()["Invoices"][0]["Reference"] == "R-1"
    assert org.get("/Invoices/6f9619ff-8b86-d011-b42d-00cf4fc964ff").status_code == 404

    upsert = org.write(
        "POST", "/Invoices", {"Invoices": [{"InvoiceID": a["InvoiceID"], "Status": "AUTHORISED"}]}
    )
    assert upsert.json()["Invoices"][0]["Status"] == "AUTHORISED"
    by_number = org.write(
        "POST", "/Invoices", {"Invoices": [{"InvoiceNumber": a["InvoiceNumber"], "Reference": "R-2"}]}
    )
    assert by_number.json()["Invoices"][0]["InvoiceID"] == a["InvoiceID"]
    assert len(org.sandbox.invoices(org.tenant)) == 2


# ----------------------------------------------------------- response shapes
def test_answers_validate_against_xeros_response_schemas(org: Org) -> None:
    contact_body = {
        "Contacts": [
            {
                "Name": "Schema Co",
                "ContactNumber": "CL-9",
                "EmailAddress": "s@schema.test",
                "DefaultCurrency": "USD",
                "Phones": [{"PhoneType": "MOBILE", "PhoneNumber": "555"}],
                "Addresses": [{"AddressType": "POBOX", "City": "Wellington"}],
            },
            {"Name": ""},
        ]
    }
    created = org.write("PUT", "/Contacts", contact_body)
    contact_id = created.json()["Contacts"][0]["ContactID"]
    invoice_body = {
        "Invoices": [
            {
                "Type": "ACCREC",
                "Contact": {"ContactID": contact_id},
                "DueDate": "2026-03-01",
                "LineItems": [{"Description": "x", "Quantity": 2, "UnitAmount": 9.99, "AccountCode": "200"}],
            },
            {"Type": "ACCREC", "Contact": {"ContactID": contact_id}, "LineItems": [{}]},
        ]
    }
    invoices = org.write("PUT", "/Invoices", invoice_body, unitdp="4")
    invoice_id = invoices.json()["Invoices"][0]["InvoiceID"]
    checks = [
        ("PUT", f"{API}/Contacts?summarizeErrors=false", created, contact_body),
        ("GET", f"{API}/Contacts?page=1", org.get("/Contacts", page="1"), None),
        ("GET", f"{API}/Contacts/{contact_id}", org.get(f"/Contacts/{contact_id}"), None),
        ("PUT", f"{API}/Invoices?summarizeErrors=false&unitdp=4", invoices, invoice_body),
        ("GET", f"{API}/Invoices", org.get("/Invoices"), None),
        ("GET", f"{API}/Invoices/{invoice_id}", org.get(f"/Invoices/{invoice_id}"), None),
    ]
    problems: list[str] = []
    for method, url, answer, body in checks:
        assert answer.status_code == 200, answer.text
        problems += validate_response(method, url, 200, answer.json(), request_body=body)
    invalid = org.write("PUT", "/Invoices", {"Invoices": [{"Type": "ACCREC"}]}, summarize=None)
    assert invalid.status_code == 400
    problems += validate_response(
        "PUT", f"{API}/Invoices", 400, invalid.json(), request_body={"Invoices": []}
    )
    assert problems == []
    # The check can fail: a wrong type in an answer is caught.
    broken = created.json()
    broken["Contacts"][0]["IsCustomer"] = "yes"
    assert validate_response("PUT", f"{API}/Contacts", 200, broken, request_body=contact_body) != []


def test_the_request_log_masks_credentials(org: Org) -> None:
    org.get("/Contacts")
    org.token(grant_type="refresh_token", refresh_token=org.secret["refresh_token"])
    log = org.sandbox.requests
    assert [r["method"] for r in log] == ["GET", "POST"]
    assert log[0]["headers"]["authorization"] == "Bearer <redacted>"
    assert log[1]["headers"]["authorization"] == "Basic <redacted>"
    assert not any(secret in str(log) for secret in org.sandbox.issued_secrets())
