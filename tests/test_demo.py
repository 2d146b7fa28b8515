"""``make demo`` (local/demo.py): the invoice recipe on the sandboxes tells the whole loop — a
contact that already exists in Xero by name is matched, an invoice Xero refuses (a discount account
the organisation does not have) fails with Xero's message, the setting is fixed with ``workflows
put --set`` and the run replayed with ``runs replay``; it ends with every run SUCCEEDED or FILTERED
and every Xero total equal to Clientary's."""

from __future__ import annotations

import re

import pytest

from clientary_xero.local.cli import main


def test_make_demo_shows_the_clash_matched_and_the_refusal_fixed_and_replayed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    before, _, after = out.partition("==> the fix:")
    assert after, out  # the demo got to the fix

    # The recipe is stored with the real command and a mistyped setting …
    assert (
        "$ clientary-xero workflows put recipes/clientary-invoice-to-xero-invoice.yaml "
        "--set SalesAccount=200 --set TaxType=TAX001 --set DiscountAccount=4100\n"
        "saved clientary-invoice-to-xero-invoice" in before
    )
    # … so exactly one run fails, with Xero's own words; the name clash fails nothing.
    failed = re.findall(
        r"^(r\w+)\s+clientary-invoice-to-xero-invoice\s+\d+\s+FAILED\s+invoice\s+(.*)$", before, re.M
    )
    assert len(failed) == 1, before
    run_id, error = failed[0]
    assert "Account code '4100' is not a valid code for this document." in error
    assert "already assigned to another contact" not in out
    assert re.search(
        r"invoice \d+ \(Harbour Lights Ltd\): SUCCEEDED, billed to the contact already in Xero "
        r"\([0-9a-f-]{36}, created: false\)",
        before,
    )

    # The fix and the replay, as a user types them; the replayed run succeeds from its failed step.
    assert "--set DiscountAccount=260\nsaved clientary-invoice-to-xero-invoice" in after
    assert f"$ clientary-xero runs replay {run_id}\nreplaying {run_id} from step invoice" in after
    assert re.search(
        rf"run {run_id} .*→  SUCCEEDED\n  step contact: SUCCEEDED \(attempts 1\)\n  step invoice: SUCCEEDED",
        after,
    )

    final = after.partition("==> runs after the replay")[2].partition("==> what is in Xero now")[0]
    statuses = re.findall(r"^r\w+\s+\S+\s+\d+\s+([A-Z]+)\s", final, re.M)
    assert sorted(statuses) == ["FILTERED", "SUCCEEDED", "SUCCEEDED", "SUCCEEDED"], final

    xero = after.partition("==> what is in Xero now")[2]
    contacts = re.findall(r"^  contact '([^']+)'", xero, re.M)
    assert sorted(contacts) == ["Acme Builders", "Harbour Lights Ltd"]  # matched, not duplicated
    assert "'Harbour Lights Ltd' is the contact that was there" in xero
    assert len(re.findall(r"= Clientary's \d+\.\d\d$", xero, re.M)) == 3 and "≠" not in xero
    assert "demo finished as expected" in xero and '"totals_equal_clientary": true' in xero
