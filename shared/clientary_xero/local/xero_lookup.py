"""``clientary-xero xero accounts | tax-rates | tracking-categories | items | organisation``: the
codes a workflow's ``settings:`` name (a sales account, a tax type, a bank account, a tracking
option), read from Xero, as a table or ``--json``.

Which Xero, as for the other commands:

* the deployed stack's connection (default; ``--stack``/``--region``): an expired token is
  refreshed from the stack's Xero secret under the token lock and written back, as every action
  Lambda does, and each read is one call of the organisation's shared rate budget (as the doctor);
* ``--local``: the sandbox organisation ``test-workflow`` runs on (a demo company's chart of
  accounts and tax rates, plus the records of a ``--seed`` file): try it without AWS or Xero;
* ``--live --secrets FILE``: the connection in the secrets file ``test-workflow --live`` reads
  (AWS stays local, rotated tokens are written back to the file).

``--json`` prints Xero's records as Xero returned them; a table shows the fields settings use. No
secret is ever printed: a connection that cannot be used is one line saying why and what to do.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clientary_xero.errors import ClientaryXeroError


@dataclass(frozen=True)
class Lookup:
    """One kind of record: where Xero serves it and how a table shows it."""

    path: str  # GET /<path> of the Accounting API
    key: str  # the answer's list
    help: str
    headers: tuple[str, ...]
    row: Callable[[dict[str, Any]], list[Any]]
    params: tuple[tuple[str, str], ...] = ()


def _money(value: Any) -> str:
    return "" if value is None else f"{value}"


def _detail(item: dict[str, Any], side: str, field: str) -> Any:
    details = item.get(side)
    return details.get(field) if isinstance(details, dict) else None


def _options(category: dict[str, Any]) -> str:
    names = []
    for option in category.get("Options") or []:
        if isinstance(option, dict):
            status = option.get("Status") or "ACTIVE"
            names.append(str(option.get("Name")) + ("" if status == "ACTIVE" else f" ({status})"))
    return ", ".join(names)


LOOKUPS: dict[str, Lookup] = {
    "accounts": Lookup(
        "Accounts",
        "Accounts",
        "the chart of accounts: AccountCode (by Code) for line items, bank accounts for payments",
        ("Code", "Name", "Type", "TaxType", "Status", "AccountID"),
        lambda a: [
            a.get("Code") or "",
            a.get("Name") or "",
            a.get("Type") or "",
            a.get("TaxType") or "",
            a.get("Status") or "",
            a.get("AccountID") or "",
        ],
    ),
    "tax-rates": Lookup(
        "TaxRates",
        "TaxRates",
        "tax rates: the TaxType a line item names",
        ("TaxType", "Name", "EffectiveRate", "Status"),
        lambda t: [
            t.get("TaxType") or "",
            t.get("Name") or "",
            _money(t.get("EffectiveRate")),
            t.get("Status") or "",
        ],
    ),
    "tracking-categories": Lookup(
        "TrackingCategories",
        "TrackingCategories",
        "tracking categories and their options (a line item's Tracking: Name and Option)",
        ("Name", "Status", "Options", "TrackingCategoryID"),
        lambda c: [
            c.get("Name") or "",
            c.get("Status") or "",
            _options(c),
            c.get("TrackingCategoryID") or "",
        ],
        (("includeArchived", "true"),),
    ),
    "items": Lookup(
        "Items",
        "Items",
        "items: the ItemCode a line item names, with its sales and purchase account and price",
        (
            "Code",
            "Name",
            "SalesAccount",
            "SalesPrice",
            "SalesTax",
            "PurchaseAccount",
            "PurchasePrice",
            "PurchaseTax",
        ),
        lambda i: [
            i.get("Code") or "",
            i.get("Name") or "",
            _detail(i, "SalesDetails", "AccountCode") or "",
            _money(_detail(i, "SalesDetails", "UnitPrice")),
            _detail(i, "SalesDetails", "TaxType") or "",
            _detail(i, "PurchaseDetails", "AccountCode") or "",
            _money(_detail(i, "PurchaseDetails", "UnitPrice")),
            _detail(i, "PurchaseDetails", "TaxType") or "",
        ],
    ),
    "organisation": Lookup(
        "Organisation",
        "Organisations",
        "the connected organisation: name, country, base currency, tenant id, tax basis and defaults",
        ("field", "value"),
        lambda o: [],  # a field per row: see organisation_rows
    ),
}

# The organisation's fields a table shows, in this order.
ORGANISATION_FIELDS = (
    "Name",
    "LegalName",
    "CountryCode",
    "BaseCurrency",
    "OrganisationID",
    "Version",
    "OrganisationType",
    "OrganisationStatus",
    "IsDemoCompany",
    "PaysTax",
    "SalesTaxBasis",
    "SalesTaxPeriod",
    "DefaultSalesTax",
    "DefaultPurchasesTax",
    "FinancialYearEndDay",
    "FinancialYearEndMonth",
    "Timezone",
    "ShortCode",
)


def organisation_rows(organisation: dict[str, Any], tenant_id: str) -> list[list[Any]]:
    """A row per field, the connection's tenant id (what every call sends as xero-tenant-id)
    after the OrganisationID."""
    rows: list[list[Any]] = []
    for name in ORGANISATION_FIELDS:
        if organisation.get(name) is not None:
            rows.append([name, organisation[name]])
        if name == "OrganisationID" and tenant_id:
            rows.append(["tenant id", tenant_id])
    return rows


# ------------------------------------------------------------------ the parser (local/cli.py registers it)
def add_parser(
    sub: Any,
    *,
    stack_arg: Callable[[argparse.ArgumentParser], None],
    json_arg: Callable[[argparse.ArgumentParser], None],
) -> None:
    parent = sub.add_parser(
        "xero",
        help="the codes settings name, from Xero: accounts, tax-rates, tracking-categories, items, …",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    def usage(_: argparse.Namespace) -> int:  # `clientary-xero xero` alone: which lookups there are
        parent.print_help()
        return 2

    parent.set_defaults(func=usage)
    x = parent.add_subparsers(dest="kind")
    for kind, lookup in LOOKUPS.items():
        k = x.add_parser(kind, help=lookup.help, description=lookup.help[0].upper() + lookup.help[1:] + ".")
        k.add_argument(
            "--local",
            action="store_true",
            help="the sandbox organisation test-workflow runs on (no AWS, no Xero)",
        )
        k.add_argument(
            "--seed", metavar="FILE", help="with --local: records to put in first, as test-workflow --seed"
        )
        k.add_argument(
            "--live",
            action="store_true",
            help="the Xero connection of --secrets FILE (as test-workflow --live)",
        )
        k.add_argument(
            "--secrets",
            metavar="FILE",
            default=None,
            help="with --live: the secrets file (default $CLIENTARY_XERO_SECRETS); rotated tokens go back",
        )
        json_arg(k)
        stack_arg(k)
        k.set_defaults(func=cmd_xero_lookup)


# ------------------------------------------------------------------ the command
def cmd_xero_lookup(args: argparse.Namespace, *, transport: Any = None) -> int:
    """``transport``: with ``--live``, the httpx transport Xero is reached through instead of the
    network (tests: the sandbox); otherwise unused."""
    with _library_logs_quiet():
        return _lookup(args, transport)


@contextlib.contextmanager
def _library_logs_quiet() -> Iterator[None]:
    """The command says what went wrong in one line; the connectors' own warnings (``Xero answered
    invalid_grant``) would reach stderr as extra lines through logging's last-resort handler."""
    logger = logging.getLogger("clientary_xero")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _lookup(args: argparse.Namespace, transport: Any) -> int:
    from clientary_xero.local import cli

    kind = LOOKUPS[args.kind]
    if args.local and args.live:
        print("error: --local (the sandbox) and --live (your Xero) exclude each other", file=sys.stderr)
        return cli.EXIT_INVALID
    if args.seed and not args.local:
        print("error: --seed fills the sandbox: it goes with --local", file=sys.stderr)
        return cli.EXIT_INVALID
    if (args.local or args.live) and (args.stack or args.region):
        print(
            "error: --stack and --region name a deployed stack: not with --local or --live", file=sys.stderr
        )
        return cli.EXIT_INVALID
    if args.local:
        return _local(args, kind)
    if args.live:
        return _live(args, kind, transport)
    return _stack(args, kind)


def _local(args: argparse.Namespace, kind: Lookup) -> int:
    from clientary_xero.local import cli
    from clientary_xero.local.environment import LocalEnvironment

    seed: dict[str, Any] = {}
    if args.seed:
        try:
            seed = cli._read_seed(args.seed)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return cli.EXIT_INVALID
    with LocalEnvironment() as env:
        if seed.get("xero"):  # the Clientary part of a test-workflow seed is of no use here
            try:
                env.seed_xero(seed["xero"])
            except ValueError as exc:
                print(f"error: {args.seed}: xero.{exc}", file=sys.stderr)
                return cli.EXIT_INVALID
        return _show(args, kind, "the sandbox")


def _live(args: argparse.Namespace, kind: Lookup, transport: Any) -> int:
    import os

    from clientary_xero.local import cli
    from clientary_xero.local.environment import LocalEnvironment

    path = args.secrets or os.environ.get("CLIENTARY_XERO_SECRETS")
    if not path:
        print("error: --live needs --secrets FILE (or CLIENTARY_XERO_SECRETS)", file=sys.stderr)
        return cli.EXIT_INVALID
    secrets = cli._read_secrets(path)
    if secrets is None:
        return cli.EXIT_INVALID
    problem = _connection_problem(secrets.get("xero"))
    if problem:
        print(
            f"error: the Xero connection in {path} is not usable: {problem}; connect Xero: "
            f"clientary-xero connect xero --local --secrets {path}",
            file=sys.stderr,
        )
        return cli.EXIT_FAILED
    from clientary_xero.connectors import http

    with LocalEnvironment(live=True, live_secrets=secrets) as env:
        try:
            if transport is not None:
                with http.use_transport(transport):
                    return _show(args, kind, "Xero")
            return _show(args, kind, "Xero")
        finally:
            _write_back(env, Path(path), secrets)


def _write_back(env: Any, path: Path, secrets: dict[str, Any]) -> None:
    """Keep a rotated refresh token (the old one dies 30 minutes after its first use); said on
    stderr, so ``--json`` stays JSON."""
    from clientary_xero.storage.secrets import SecretStore

    assert env.resources is not None
    current = SecretStore().read(env.resources.xero_secret_id)
    if current != secrets.get("xero"):
        secrets["xero"] = current
        path.write_text(json.dumps(secrets, indent=2))
        print(f"rotated Xero tokens written back to {path}", file=sys.stderr)


def _stack(args: argparse.Namespace, kind: Lookup) -> int:
    from clientary_xero.local import cli
    from clientary_xero.settings import get_settings
    from clientary_xero.storage.secrets import SecretStore

    cli._use_stack(args)
    secret_id = get_settings().xero_secret_id
    try:
        value = SecretStore().read(secret_id)
    except ClientaryXeroError as exc:
        raise ClientaryXeroError(f"the stack's Xero connection secret cannot be read: {exc}") from None
    problem = _connection_problem(value)
    if problem:
        stack = f" --stack {args.stack}" if args.stack else ""
        print(
            f"error: the stack's Xero connection is not usable: {problem}; connect Xero: "
            f"clientary-xero connect xero{stack}",
            file=sys.stderr,
        )
        return cli.EXIT_FAILED
    return _show(args, kind, "Xero")


def _connection_problem(secret: Any) -> str:
    """What makes a Xero connection secret unusable, by key name only (the doctor's check)."""
    from clientary_xero.usecases.doctor import _secret_problems

    if not isinstance(secret, dict):
        return "no Xero connection (a 'xero' object) in it"
    return "; ".join(_secret_problems("xero", secret) or [])


def _show(args: argparse.Namespace, kind: Lookup, where: str) -> int:
    from clientary_xero.connectors.xero.client import build_xero_client
    from clientary_xero.local import cli, output

    client = build_xero_client()
    try:
        answer = client.request("GET", f"/{kind.path}", params=dict(kind.params) or None)
        tenant_id = client.tokens.tenant_id()
    finally:
        client.close()
    records = [
        r for r in (answer.get(kind.key) if isinstance(answer, dict) else None) or [] if isinstance(r, dict)
    ]
    if args.json:
        output.print_json(records[0] if kind.key == "Organisations" and records else records)
        return cli.EXIT_OK
    if kind.key == "Organisations":
        if not records:
            raise ClientaryXeroError(f"{where} answered GET /Organisation without an organisation")
        output.print_table(list(kind.headers), organisation_rows(records[0], tenant_id))
        return cli.EXIT_OK
    if not records:
        print(f"no {args.kind.replace('-', ' ')} in {where}'s organisation")
        return cli.EXIT_OK
    output.print_table(list(kind.headers), [kind.row(record) for record in records])
    return cli.EXIT_OK
