"""``make demo``: the main job end to end on embedded defaults — no AWS account, no Docker, no keys.

1. the stack's tables, queues and secrets come up in moto; Xero and Clientary are sandboxes;
2. the sample workflow (samples/invoice_to_xero.yaml) is validated and saved;
3. the first poll records where to start (it does not replay history);
4. four invoices are created in Clientary: two for one client, one with nothing to bill that the
   filter rejects, and
   one whose client name already belongs to another contact in Xero, which Xero refuses;
5. the next poll starts the runs; the action queue is drained through the Xero action Lambda;
6. the same invoices arrive again by push and by a second poll: nothing is doubled;
7. the runs and what ended up in Xero are printed.
"""

from __future__ import annotations

import json
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent / "samples"


def run_demo() -> int:
    from clientary_xero.local.cli import print_run, print_runs
    from clientary_xero.local.environment import LocalEnvironment
    from clientary_xero.workflows.loader import read_document

    trigger = "clientary.new_invoice"
    with LocalEnvironment() as env:
        xero, clientary = env.xero, env.clientary
        tenant = env.xero_tenant_id()
        _say(
            "Xero sandbox: an organisation that already has a contact 'Harbour Lights Ltd' (entered by hand)"
        )
        xero.seed_contact(tenant, Name="Harbour Lights Ltd", ContactNumber="LEGACY-7")

        document = read_document(SAMPLES / "invoice_to_xero.yaml")
        workflow = env.put_workflow(document)
        _say(f"saved workflow {workflow.id!r}: {workflow.name}")

        first = env.poll(trigger)
        _say(
            f"first poll after deployment: {first['new_records']} records delivered "
            f"({first['requests']} request) — it only records where to start"
        )

        acme = clientary.seed_client("Acme Builders")
        harbour = clientary.seed_client("Harbour Lights Ltd")
        solo = clientary.seed_client("Solo Design")
        created = [
            clientary.add_invoice(
                acme["id"],
                [
                    {"title": "Site survey", "quantity": 4, "price": 95.0},
                    {"title": "Report", "quantity": 1, "price": 250.0},
                ],
                status=1,
                title="Survey — March",
            ),
            clientary.add_invoice(
                acme["id"],
                [{"title": "Follow-up visit", "quantity": 2, "price": 95.0}],
                status=4,
                title="Follow-up",
            ),
            clientary.add_invoice(
                solo["id"],
                [{"title": "Initial consultation (free)", "quantity": 1, "price": 0.0}],
                status=1,
                title="Nothing to bill",
            ),
            clientary.add_invoice(
                harbour["id"],
                [{"title": "Lighting plan", "quantity": 1, "price": 1200.0}],
                status=1,
                title="Lighting plan",
            ),
        ]
        _say(
            "created in Clientary: "
            + ", ".join(f"invoice {i['number']} ({i['client']['name']})" for i in created)
        )

        second = env.poll(trigger)
        _say(f"next poll: {second['new_records']} new invoices → {len(second['runs'])} runs started")
        env.drain()

        _say("the same invoices again: pushed, then polled (at-least-once delivery)")
        for invoice in created:
            env.push(trigger, invoice["id"])
        again = env.poll(trigger)
        env.drain()
        _say(
            f"repeat poll: {again['new_records']} new records; runs created by the repeats: "
            f"{sum(1 for r in again['runs'] if r['created'])}"
        )

        state = env.state
        runs = state.list_runs(limit=50)
        print()
        _say("runs (newest first)")
        print_runs(runs)
        for run in runs:
            if run["status"] == "FAILED":
                print_run(run, state.get_steps(run["run_id"]), verbose=False)

        print()
        _say("what is in Xero now")
        for contact in xero.contacts(tenant):
            print(
                f"  contact {contact['Name']!r:24} ContactNumber={contact.get('ContactNumber')!s:10} "
                f"{contact['ContactID']}"
            )
        for invoice in xero.invoices(tenant):
            print(
                f"  invoice {invoice['InvoiceNumber']:10} {invoice['Status']:10} total {invoice['Total']:>9} "
                f"{invoice.get('CurrencyCode', '')} contact {invoice['Contact'].get('Name', '')}"
            )

        statuses = sorted(r["status"] for r in runs)
        expected = ["FAILED", "FILTERED", "SUCCEEDED", "SUCCEEDED"]
        xero_invoices = len(xero.invoices(tenant))
        ok = statuses == expected and xero_invoices == 2
        print()
        _say(
            ("demo finished as expected: " if ok else "demo finished UNEXPECTEDLY: ")
            + json.dumps({"runs": statuses, "xero_invoices": xero_invoices})
        )
        return 0 if ok else 1


def _say(text: str) -> None:
    print(f"==> {text}")
