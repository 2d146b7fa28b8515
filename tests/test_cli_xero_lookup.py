"""Issue 11, point 4: `clientary-xero xero accounts | tax-rates | tracking-categories | items |
organisation` — the codes settings name, read from Xero as a table or --json.

Three ways to Xero: --local (the sandbox organisation test-workflow runs on, with a --seed), the
deployed stack's connection (moto: a CloudFormation stack whose outputs name the local runner's
resources, the Xero secret in moto's Secrets Manager, the sandbox as Xero, as test_doctor.py does)
and --live --secrets FILE (the sandbox injected as the transport instead of the network). A
connection that cannot be used is one line and a non-zero exit; no secret is ever printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clientary_xero.local.cli import EXIT_FAILED, EXIT_INVALID, build_parser, main
from clientary_xero.local.environment import LocalEnvironment
from tests.test_doctor import STACK, deploy, read_secret, set_secret

SEED = {
    "xero": {
        "TrackingCategories": [
            {"Name": "Region", "Options": [{"Name": "North"}, {"Name": "South"}]},
            {"Name": "Old team", "Status": "ARCHIVED"},
        ],
        "Items": [
            {
                "Code": "SURVEY",
                "Name": "Site survey",
                "SalesDetails": {"UnitPrice": 95.0, "AccountCode": "200", "TaxType": "OUTPUT"},
                "PurchaseDetails": {"UnitPrice": 40.0, "AccountCode": "310"},
            }
        ],
    }
}


def lines(out: str) -> list[list[str]]:
    """A table's rows as lists of cells (the columns are two or more blanks apart)."""
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line.strip()]


def local(capsys: pytest.CaptureFixture[str], kind: str, *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["xero", kind, "--local", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def row_of(out: str, first: str) -> list[str]:
    return next(row for row in lines(out) if row[0] == first)


@pytest.fixture
def seed_file(tmp_path: Path) -> Path:
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(SEED))
    return path


# ------------------------------------------------------------------------------ --local tables
def test_local_accounts_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = local(capsys, "accounts")
    assert code == 0
    rows = lines(out)
    assert rows[0] == ["Code", "Name", "Type", "TaxType", "Status", "AccountID"]
    by_code = {row[0]: row for row in rows[2:]}
    assert by_code["200"][1:5] == ["Sales", "REVENUE", "OUTPUT", "ACTIVE"]
    assert by_code["090"][1:5] == ["Checking Account", "BANK", "NONE", "ACTIVE"]


def test_local_tax_rates_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = local(capsys, "tax-rates")
    assert code == 0
    rows = lines(out)
    assert rows[0] == ["TaxType", "Name", "EffectiveRate", "Status"]
    assert ["OUTPUT", "Tax on Sales", "0.0", "ACTIVE"] in rows
    assert ["TAX001", "Sales Tax", "9.5", "ACTIVE"] in rows


def test_local_tracking_categories_table_with_archived_ones(
    capsys: pytest.CaptureFixture[str], seed_file: Path
) -> None:
    code, out, _ = local(capsys, "tracking-categories")
    assert code == 0 and out == "no tracking categories in the sandbox's organisation\n"
    code, out, _ = local(capsys, "tracking-categories", "--seed", str(seed_file))
    assert code == 0
    rows = lines(out)
    assert rows[0] == ["Name", "Status", "Options", "TrackingCategoryID"]
    assert rows[2][:2] == ["Old team", "ARCHIVED"] and len(rows[2]) == 3  # no options: an empty cell
    assert rows[3][:3] == ["Region", "ACTIVE", "North, South"]


def test_local_items_table(capsys: pytest.CaptureFixture[str], seed_file: Path) -> None:
    code, out, _ = local(capsys, "items", "--seed", str(seed_file))
    assert code == 0
    rows = lines(out)
    assert rows[0] == [
        "Code",
        "Name",
        "SalesAccount",
        "SalesPrice",
        "SalesTax",
        "PurchaseAccount",
        "PurchasePrice",
        "PurchaseTax",
    ]
    assert rows[2][:7] == ["SURVEY", "Site survey", "200", "95.0", "OUTPUT", "310", "40.0"]


def test_local_organisation_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = local(capsys, "organisation")
    assert code == 0
    fields = {row[0]: row[1] for row in lines(out)[2:]}
    assert fields["Name"] == "Demo Company (US)" and fields["CountryCode"] == "US"
    assert fields["BaseCurrency"] == "USD" and fields["SalesTaxBasis"] == "ACCRUAL"
    assert fields["tenant id"] == fields["OrganisationID"]
    assert fields["DefaultSalesTax"] == "Tax Exclusive"


# ------------------------------------------------------------------------------ --local --json
@pytest.mark.parametrize(
    ("kind", "check"),
    [
        (
            "accounts",
            lambda r: (
                {"Code": "200", "Name": "Sales"}.items()
                <= next(a for a in r if a.get("Code") == "200").items()
            ),
        ),
        ("tax-rates", lambda r: any(t["TaxType"] == "OUTPUT" for t in r)),
        ("tracking-categories", lambda r: [c["Name"] for c in r] == ["Old team", "Region"]),
        ("items", lambda r: r[0]["Code"] == "SURVEY" and r[0]["SalesDetails"]["AccountCode"] == "200"),
        ("organisation", lambda r: r["Name"] == "Demo Company (US)" and r["BaseCurrency"] == "USD"),
    ],
)
def test_local_json(capsys: pytest.CaptureFixture[str], seed_file: Path, kind: str, check: Any) -> None:
    code, out, _ = local(capsys, kind, "--json", "--seed", str(seed_file))
    assert code == 0
    assert check(json.loads(out))


def test_local_refuses_a_bad_seed_and_live_together(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"xero": {"Items": [{"Name": "no code"}]}}))
    code, _, err = local(capsys, "items", "--seed", str(bad))
    assert code == EXIT_INVALID and err.startswith(f"error: {bad}: xero.Items[0]: ") and err.count("\n") == 1
    code, _, err = local(capsys, "items", "--live")
    assert code == EXIT_INVALID and "exclude each other" in err
    assert main(["xero", "items", "--seed", str(bad)]) == EXIT_INVALID
    assert capsys.readouterr().err == "error: --seed fills the sandbox: it goes with --local\n"


# ------------------------------------------------------------------------------ the stack's connection
@pytest.fixture
def env() -> Iterator[LocalEnvironment]:
    with LocalEnvironment(max_attempts=3) as environment:
        yield environment


def secret_values(env: LocalEnvironment) -> list[str]:
    secret = read_secret(env, "xero_secret_id")
    return [str(secret[k]) for k in ("access_token", "refresh_token", "client_secret") if secret.get(k)]


def test_the_stacks_connection_lists_the_accounts_and_prints_no_secret(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(env)
    # an access token that expired: the command refreshes it and keeps the rotated pair
    before = read_secret(env, "xero_secret_id")
    set_secret(env, "xero_secret_id", {**before, "expires_at": 0})
    capsys.readouterr()
    assert main(["xero", "accounts", "--stack", STACK]) == 0
    out, err = capsys.readouterr()
    assert row_of(out, "200")[:5] == ["200", "Sales", "REVENUE", "OUTPUT", "ACTIVE"]
    after = read_secret(env, "xero_secret_id")
    assert after["refresh_token"] != before["refresh_token"]  # rotated, written back to the secret
    for value in [*secret_values(env), before["refresh_token"], before["access_token"]]:
        assert value not in out and value not in err
    assert main(["xero", "organisation", "--stack", STACK, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["OrganisationID"] == env.xero_tenant_id()


def test_without_stack_the_environments_resources_are_used(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["xero", "tax-rates", "--json"]) == 0  # WORKFLOWS_TABLE, STATE_TABLE, XERO_SECRET_ID set
    assert any(t["TaxType"] == "OUTPUT" for t in json.loads(capsys.readouterr().out))


def test_a_connection_without_the_settings_scope_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with LocalEnvironment(max_attempts=3, xero_scopes="offline_access accounting.contacts") as narrow:
        deploy(narrow)
        capsys.readouterr()
        code = main(["xero", "accounts", "--stack", STACK])
        out, err = capsys.readouterr()
    assert code == EXIT_FAILED and out == ""
    assert err.count("\n") == 1 and err.startswith(
        "error: Xero refused GET /Accounts (401 AuthorizationUnsuccessful)"
    )
    assert "accounting.settings" in err and "clientary-xero connect xero" in err


def test_a_disconnected_xero_is_one_line_saying_reconnect(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(env)
    revoked = {**read_secret(env, "xero_secret_id"), "refresh_token": "revoked", "expires_at": 0}
    set_secret(env, "xero_secret_id", revoked)
    capsys.readouterr()
    code = main(["xero", "items", "--stack", STACK])
    out, err = capsys.readouterr()
    assert code == EXIT_FAILED and out == "" and err.count("\n") == 1
    assert "invalid_grant" in err and "Reconnect Xero" in err and "revoked" not in err


def test_a_never_connected_stack_says_how_to_connect(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(env)
    set_secret(env, "xero_secret_id", {"auth": "oauth", "client_id": "", "client_secret": ""})
    capsys.readouterr()
    code = main(["xero", "organisation", "--stack", STACK])
    assert code == EXIT_FAILED
    assert capsys.readouterr().err == (
        "error: the stack's Xero connection is not usable: client_id, client_secret, tenant_id, "
        "refresh_token not set (the connection was never completed); connect Xero: "
        f"clientary-xero connect xero --stack {STACK}\n"
    )


def test_no_such_stack_is_one_line(env: LocalEnvironment, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["xero", "accounts", "--stack", "nope"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith("error: there is no stack 'nope' in us-east-1") and err.count("\n") == 1


# ------------------------------------------------------------------------------ --live --secrets
def live(tmp_path: Path, kind: str, xero: Any, secret: dict[str, Any], *extra: str) -> int:
    from clientary_xero.local.xero_lookup import cmd_xero_lookup

    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({"xero": secret, "clientary": {"subdomain": "acme", "api_token": "t"}}))
    args = build_parser().parse_args(["xero", kind, "--live", "--secrets", str(path), *extra])
    return cmd_xero_lookup(args, transport=xero)


def test_live_reads_the_secrets_files_connection_and_writes_back_the_rotated_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from clientary_xero.local.xero_sandbox import XeroSandbox

    xero = XeroSandbox()
    secret = {**xero.bootstrap_secret(tenant_name="Kea Cafe Ltd"), "expires_at": 0}  # must refresh
    assert live(tmp_path, "organisation", xero, secret, "--json") == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["Name"] == "Kea Cafe Ltd"
    assert err == f"rotated Xero tokens written back to {tmp_path / 'secrets.json'}\n"
    written = json.loads((tmp_path / "secrets.json").read_text())
    assert written["xero"]["refresh_token"] != secret["refresh_token"]
    assert written["clientary"] == {"subdomain": "acme", "api_token": "t"}
    for value in (secret["refresh_token"], secret["client_secret"], written["xero"]["access_token"]):
        assert value not in out and value not in err
    assert live(tmp_path, "accounts", xero, written["xero"]) == 0
    assert "Sales" in capsys.readouterr().out


def test_live_needs_a_usable_secrets_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["xero", "accounts", "--live"]) == EXIT_INVALID
    assert capsys.readouterr().err == "error: --live needs --secrets FILE (or CLIENTARY_XERO_SECRETS)\n"
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"clientary": {}}))
    assert main(["xero", "accounts", "--live", "--secrets", str(path)]) == EXIT_FAILED
    assert capsys.readouterr().err == (
        f"error: the Xero connection in {path} is not usable: no Xero connection (a 'xero' object) in it; "
        f"connect Xero: clientary-xero connect xero --local --secrets {path}\n"
    )
