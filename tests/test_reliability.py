"""The reliability scenarios of issue 7, each at a small size (``make reliability`` runs them at full
size and writes docs/RELIABILITY.md). Each scenario returns its figures and the problems it found;
a scenario passes when it found none.
"""

from __future__ import annotations

import pytest
from benchmarks import reliability_harness as harness
from benchmarks import reliability_scenarios as scenarios
from benchmarks.reliability import SMALL

pytestmark = pytest.mark.timeout(600)


def passes(result: harness.Result) -> None:
    assert result.passed, f"{result.title} [{result.size}]: " + "; ".join(result.problems)


def test_each_invoice_delivered_three_times_makes_one_xero_invoice_and_no_duplicate_contact() -> None:
    passes(scenarios.deliveries(SMALL["deliveries"]))


def test_with_a_fifth_of_xero_calls_failing_runs_end_and_replays_complete_them_without_duplicates() -> None:
    passes(scenarios.faults(SMALL["faults"]))


def test_a_crash_at_any_of_four_points_of_a_step_loses_nothing_and_duplicates_nothing() -> None:
    passes(scenarios.crashes(SMALL["crashes"]))


def test_twenty_workers_on_an_expired_token_refresh_once_though_the_token_endpoint_fails_once() -> None:
    passes(scenarios.token_refresh(SMALL["token_refresh"]))


def test_workflows_edited_into_invalid_ones_fail_their_runs_with_the_reason_and_the_good_one_runs() -> None:
    passes(scenarios.invalid_workflows(SMALL["invalid_workflows"]))


def test_xeros_daily_limit_parks_runs_and_the_sweeper_completes_them_after_the_reset() -> None:
    passes(scenarios.daily_limit(SMALL["daily_limit"]))


def test_a_poisoned_a_runaway_regex_and_a_432_kb_record_fail_alone_and_the_cursor_advances() -> None:
    # 22 a's: catastrophic backtracking that today's engine survives in about a second; the full
    # run uses the 28 (about a minute today).
    passes(scenarios.bad_records(SMALL["bad_records"], runaway=22))


def test_no_foreign_record_is_adopted_a_rename_makes_no_second_contact_and_skipped_records_are_listed() -> (
    None
):
    passes(scenarios.adoption_rename_disabled(SMALL["adoption_rename_disabled"]))


def test_a_thousand_fuzzed_requests_get_no_5xx_no_uncaught_exception_and_refusals_enqueue_nothing() -> None:
    passes(scenarios.fuzz(SMALL["fuzz"]))
