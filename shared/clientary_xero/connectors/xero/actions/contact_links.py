"""Contact links and the unchanged-contact answer that needs no input model (no pydantic).

A contact step whose contact is linked and whose input is what was last written through the link
makes no Xero call (contacts.py, "unchanged"). The step normally learns that after validating its
input: the link holds a hash of the validated fields. ``unchanged_contact`` answers the same
question *before* validation, from the input as rendered: the link also holds the hash of the
rendered input that made its last write (``rendered_sha256``, with the action's code in it: see
``ActionContext.input_sha256``), and the same rendered input validates to the same fields under
the same code. So a match proves the step would skip, and the step outputs the link's snapshot as
it would (``unchanged: true``), for the organisation the connection is for now.

The engine asks it only while the action's module is not loaded in the container (its first
contact step: engine/runner.py), where it spares the import of pydantic and the contact models
(~0.3x the floor of a cold start); it costs one read, which a warm container, where validation is
cheap and the action's own link request decides the same, does not pay.
"""

from __future__ import annotations

from typing import Any

from clientary_xero.connectors.base import ActionContext

CONTACT_LINK = "xero.contact"
# The fields of Xero's answer a step outputs; the link keeps them as its snapshot.
SNAPSHOT_FIELDS = ("ContactID", "Name", "ContactNumber", "EmailAddress", "ContactStatus")
# What a step tells about an archived match it did not write to.
ARCHIVED_NOTE = (
    "matched an ARCHIVED Xero contact: linked, not updated (Xero does not edit archived contacts, "
    "nor take invoices for them); restore it in Xero, or send ContactStatus ACTIVE, to update or bill it"
)


def contact_output(
    contact: dict[str, Any],
    created: bool,
    unchanged: bool = False,
    matched_by: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """A contact step's output."""
    archived = contact.get("ContactStatus") == "ARCHIVED"
    return {
        **{key: contact.get(key) for key in SNAPSHOT_FIELDS},
        "created": created,
        "unchanged": unchanged,
        "matched_by": matched_by,
        "archived": archived,
        "note": note if note is not None else (ARCHIVED_NOTE if archived else None),
    }


def tenant_of(client: Any) -> str:
    # Links remember the organisation: after a reconnection to another one, a link made for the old
    # organisation is not used (its ContactID does not exist there) and the search runs again.
    return str(getattr(getattr(client, "tokens", None), "tenant_id", lambda: "")() or "")


def for_tenant(link: dict[str, Any] | None, tenant: str) -> dict[str, Any] | None:
    """The contact's id link, if it was made for this organisation."""
    if link and link.get("ContactID") and link.get("tenant", tenant) == tenant:
        return link
    return None


def unchanged_contact(ctx: ActionContext, rendered: Any) -> dict[str, Any] | None:
    """The step's output when its linked contact's last write was this very rendered input (for
    the organisation connected now); None when the step must run (validated, then as always)."""
    if not ctx.input_sha256 or not isinstance(rendered, dict):
        return None
    number = rendered.get("ContactNumber")
    if not isinstance(number, str) or not number:
        return None
    link = ctx.links.get_link(CONTACT_LINK, number)
    if not link or link.get("rendered_sha256") != ctx.input_sha256:
        return None
    link = for_tenant(link, tenant_of(ctx.service("xero")))
    if link is None or not isinstance(link.get("contact"), dict):
        return None
    return contact_output({**link["contact"], "ContactID": link["ContactID"]}, False, True, "link")
