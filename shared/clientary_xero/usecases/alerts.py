"""The notifier: every failure that needs a person reaches one, grouped into one e-mail (issue 9).

What is told, to the stack's SNS topic (``AlarmTopic``; an e-mail subscription from ``AlarmEmail``):

* every run that ends FAILED (a permanent error, or a retryable one after the last attempt): its
  workflow, record, step, the service's message, and the ``runs show`` / ``runs replay`` commands;
* a Xero connection that needs reconnecting (``invalid_grant``): once, not once per run;
* new messages in a dead-letter queue;
* a workflow whose runs keep failing (``REPEATED_FAILURE_THRESHOLD`` in a row): once per streak.

Design: notices, then a digest.

1. Where a run ends FAILED, its *notice* (ids and the service's message, storage/notices.py) is
   written in the same DynamoDB transaction as the run's FAILED update, with one more failure in
   its workflow's streak (engine/notify.py). Nothing is published there: a thousand failures in a
   minute are a thousand small writes, not a thousand e-mails.
2. Every 2 minutes (an EventBridge schedule) this use case reads the pending notices, the streaks
   of their workflows, what was told before (flags) and each DLQ's depth, and publishes **one**
   digest when anything is new: counts in the subject; in the body the failures grouped by
   workflow, step and message, with a count and a few runs each.
3. Only once SNS took the digest are the notices deleted, the flags set and the streaks marked
   reported. A crash between 2 and 3 sends the same digest again next time (acceptable); a
   publish that fails leaves everything for the next run, so a failure is never lost. Two
   overlapping runs (rare: the schedule is slower than the function's timeout) at worst send a
   digest twice.

Reconnect: a failed run whose error is ``errors.ReauthorizationRequired`` (``reconnect``) is told
in a "Xero needs reconnecting" section while the ``xero-reconnect`` flag is absent; then the flag
is set, and more runs failing for the same reason are not listed again (they are FAILED and
counted in ``RunsFailed``; the section says how to find and replay them). The flag is cleared by
the first token refresh that works (connectors/xero/auth.py: the connection works again), so the
next disconnection is told again, and it expires after a day: a reminder while it lasts.

Repeated failures: a SUCCEEDED run resets its workflow's streak (in the run's own SUCCEEDED
transaction); a streak of at least the threshold not yet reported is told, then marked. Runs
are not retried beyond their attempts and the workflow stays enabled: disabling it is the
person's choice.

Dead-letter queues: a depth above the depth last told is told (the new messages), and the depth
is remembered; an empty queue clears it. The CloudWatch alarms (template.yaml) are a second,
independent path: on ``RunsFailed``, DLQ depth, queue age, function errors (this function's too).

Secrets never reach a notice: it holds ids and the service's message (truncated); a token-like
string in a message is masked here all the same.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from clientary_xero import metrics
from clientary_xero.settings import Settings, get_settings
from clientary_xero.storage.notices import RECONNECT_FLAG, NoticeStore

logger = logging.getLogger(__name__)

# "Xero needs reconnecting" is told again after this long while the connection stays broken.
RECONNECT_REMINDER_SECONDS = 86400
DLQ_FLAG_SECONDS = 30 * 86400
GROUPS_SHOWN = 20
RUNS_PER_GROUP = 5

_BEARER = re.compile(r"(?i)\bbearer\s+\S+")
_TOKENISH = re.compile(r"[A-Za-z0-9_\-+/=.]{48,}")

DLQS = (
    ("xero_dlq_url", "Xero action", "step"),
    ("clientary_dlq_url", "Clientary action", "step"),
    ("xero_event_dlq_url", "Xero event", "event"),
)


def mask(text: str) -> str:
    """A service's message with anything that looks like a credential masked."""
    return _TOKENISH.sub("***", _BEARER.sub("Bearer ***", text))


@dataclass
class Digest:
    stack: str
    headline: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)

    @property
    def subject(self) -> str:
        return f"clientary-xero {self.stack}: " + "; ".join(self.headline)

    @property
    def body(self) -> str:
        footer = (
            f"Every FAILED run: clientary-xero runs list --status FAILED --stack {self.stack}\n"
            "README: What arrives by e-mail (what to do about each kind of message)."
        )
        return "\n\n".join([*self.sections, footer]) + "\n"


def send_digest(
    *,
    store: NoticeStore | None = None,
    settings: Settings | None = None,
    publish: Callable[[str, str, str], str] | None = None,
    depth: Callable[[str], int] | None = None,
) -> dict[str, Any]:
    """One notifier run (see the module docstring). Returns what it told."""
    from clientary_xero.storage import alerting

    settings = settings or get_settings()
    store = store or NoticeStore()
    publish = publish or alerting.publish
    depth = depth or alerting.queue_depth
    stack = settings.stack_name
    digest = Digest(stack)
    after: list[Callable[[], None]] = []  # what to remember once the digest is out

    pending = store.pending()
    failed = [n for n in pending if n["kind"] == "failed"]
    # A FAILED run's reconnect, or a trigger's (usecases/xero_trigger.py: no run to fail).
    reconnect = [n for n in pending if n.get("reconnect")]
    others = [n for n in failed if not n.get("reconnect")]
    if reconnect and store.get_flag(RECONNECT_FLAG) is None:
        digest.headline.insert(0, "Xero needs reconnecting")
        digest.sections.append(_reconnect_section(reconnect, stack))
        told = {"at": reconnect[0]["at"], "notices": len(reconnect)}
        after.append(partial(store.set_flag, RECONNECT_FLAG, told, ttl_seconds=RECONNECT_REMINDER_SECONDS))
    if others:
        digest.headline.append(f"{len(others)} run{'s' if len(others) != 1 else ''} FAILED")
        digest.sections.append(_failures_section(others, stack))

    # A disconnected Xero fails every workflow: that is the reconnect section's news, not theirs.
    streaks = store.streaks({str(n["workflow_id"]) for n in others})
    threshold = settings.repeated_failure_threshold
    repeating = sorted(w for w, s in streaks.items() if s["failures"] >= threshold and not s["reported"])
    if repeating:
        digest.headline.append(
            f"workflow {repeating[0]} keeps failing"
            if len(repeating) == 1
            else f"{len(repeating)} workflows keep failing"
        )
        digest.sections.append(_repeated_section(repeating, streaks, threshold, stack))
        after.extend(partial(store.mark_reported, w) for w in repeating)

    in_dlqs = 0
    for attribute, label, kind in DLQS:
        url = str(getattr(settings, attribute) or "")
        if not url:
            continue
        now_depth = depth(url)
        in_dlqs += now_depth
        name = f"dlq#{attribute.removesuffix('_dlq_url')}"
        told_depth = int((store.get_flag(name) or {}).get("depth", 0))
        if now_depth > told_depth:
            new = now_depth - told_depth
            digest.headline.append(f"{new} new message{'s' if new != 1 else ''} in the {label} DLQ")
            digest.sections.append(_dlq_section(label, kind, new, now_depth, stack))
        if now_depth and now_depth != told_depth:
            after.append(partial(store.set_flag, name, {"depth": now_depth}, ttl_seconds=DLQ_FLAG_SECONDS))
        elif not now_depth and told_depth:
            after.append(partial(store.clear_flag, name))
    metrics.count("DeadLetterMessages", in_dlqs)

    message_id = ""
    if digest.sections:
        if not settings.alarm_topic_arn:
            logger.warning("ALARM_TOPIC_ARN is not set: the notices stay until it is")
            return {"sent": False, "notices": len(pending)}
        message_id = publish(settings.alarm_topic_arn, digest.subject, digest.body)
        metrics.count("NoticesSent")
    for remember in after:
        remember()
    store.delete(pending)
    summary = {
        "sent": bool(message_id),
        "failed_runs": len(failed),
        "subject": digest.subject if message_id else "",
    }
    logger.info("notifier finished", extra=summary)
    return summary


# ------------------------------------------------------------------------------------ sections
def _when(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _run_line(notice: dict[str, Any]) -> str:
    record = f"{notice.get('trigger') or 'record'} {notice.get('record_id') or '?'}".strip()
    return f"    {notice['run_id']}  ({record}, {_when(notice['at'])})"


def _failures_section(notices: list[dict[str, Any]], stack: str) -> str:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for n in notices:
        groups.setdefault((str(n["workflow_id"]), str(n.get("step_id") or ""), n["message"]), []).append(n)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    lines = [f"RUNS THAT FAILED ({len(notices)})"]
    for (workflow, step, message), runs in ordered[:GROUPS_SHOWN]:
        where = f"step {step!r}" if step else "before any step (at intake: the workflow or its filter)"
        lines.append("")
        lines.append(f"* workflow {workflow!r}, {where}: {len(runs)} run{'s' if len(runs) != 1 else ''}")
        lines.append(f"  {mask(message) or '(no message)'}")
        lines += [f"    - {mask(m)}" for m in runs[0].get("messages") or [] if m and m not in message]
        lines += [_run_line(n) for n in runs[:RUNS_PER_GROUP]]
        if len(runs) > RUNS_PER_GROUP:
            lines.append(f"    … and {len(runs) - RUNS_PER_GROUP} more")
        first = runs[0]["run_id"]
        retry = " (after its last attempt)" if runs[0].get("type") == "retryable" else ""
        lines.append(f"  Failed{retry}. Look:   clientary-xero runs show {first} --stack {stack}")
        lines.append(f"  Fix the cause, then: clientary-xero runs replay {first} --stack {stack}")
    rest = ordered[GROUPS_SHOWN:]
    if rest:
        lines.append("")
        lines.append(f"… and {sum(len(r) for _, r in rest)} more runs in {len(rest)} other groups.")
    return "\n".join(lines)


def _reconnect_section(notices: list[dict[str, Any]], stack: str) -> str:
    runs = [n for n in notices if n.get("run_id")]
    stopped = sorted({str(n["source"]) for n in notices if n.get("source")})
    workflows = sorted({str(n["workflow_id"]) for n in runs})
    lines = [
        "XERO NEEDS RECONNECTING",
        "",
        "Xero refused the connection's refresh token (invalid_grant): it expired (60 days unused) or",
        "the app was disconnected in Xero. Every Xero step fails until you connect again:",
        f"    clientary-xero connect xero --stack {stack}",
    ]
    if stopped:
        lines += ["", "Stopped for the same reason: " + "; ".join(stopped) + " (they resume by themselves)."]
    if runs:
        lines += [
            "",
            f"{len(runs)} run{'s' if len(runs) != 1 else ''} failed on it so far "
            f"(workflows: {', '.join(workflows)}), e.g.:",
            *[_run_line(n) for n in runs[:RUNS_PER_GROUP]],
        ]
    lines += [
        "Runs that fail on it from now on are not listed again (this is told once, and again after a",
        "day if it lasts). After reconnecting, replay them:",
        f"    clientary-xero runs list --status FAILED --stack {stack}",
        f"    clientary-xero runs replay RUN --stack {stack}",
    ]
    return "\n".join(lines)


def _repeated_section(
    workflows: list[str], streaks: dict[str, dict[str, Any]], threshold: int, stack: str
) -> str:
    lines = ["WORKFLOWS THAT KEEP FAILING", ""]
    for w in workflows:
        lines.append(
            f"* {w!r}: its last {streaks[w]['failures']} runs all FAILED (told once at {threshold} in a row;"
            " a run that succeeds starts the count again)."
        )
    lines += [
        "",
        "Runs are not retried beyond their attempts: look at one (the failures above), fix the workflow",
        "or the data, then replay the runs; disable the workflow meanwhile if it should stop:",
        f"    clientary-xero workflows list --stack {stack}",
    ]
    return "\n".join(lines)


def _dlq_section(label: str, kind: str, new: int, total: int, stack: str) -> str:
    lines = [f"DEAD-LETTER QUEUE: {label} ({new} new, {total} in all)", ""]
    if kind == "step":
        lines += [
            "A step message lands there when its step used every attempt (its run is FAILED: listed",
            "above or earlier) or when every attempt crashed or timed out (its run stays QUEUED or",
            "RUNNING). Find the runs, fix the cause, then replay them:",
            f"    clientary-xero runs list --status RUNNING --stack {stack}",
            f"    clientary-xero runs replay RUN --stuck --stack {stack}",
            "or redrive the queue in the SQS console (README: what a redrive does).",
        ]
    else:
        lines += [
            "A Xero webhook event could not be turned into runs after every attempt. Check the Xero",
            "connection and the XeroTriggerFunction's logs, then redrive the queue to XeroEventQueue",
            "in the SQS console.",
        ]
    return "\n".join(lines)
