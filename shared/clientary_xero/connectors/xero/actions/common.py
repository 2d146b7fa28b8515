"""What every Xero action shares: the strict input base, Xero's dates and money, references to
contacts and accounts, line items, the one behaviour of every *find* action, and the one check of
every retry lookup (``adopt_found``: a record found by its key is taken over only when it is what
the step would have written, see ``clientary_xero.connectors.adoption``).

Find actions (``xero.find_contact``, ``xero.find_invoice``, ``xero.find_purchase_order``):

* nothing matches → ``found: false``, ``count: 0`` and every output field ``null`` (a later step or
  an ``if`` can test ``steps.<id>.found``); with ``FailIfNotFound: true`` the step fails instead;
* several match → the first (in Xero's order) is returned at the top level, ``count`` says how many
  matched and ``matches`` lists them (one page, at most 100); with ``Multiple: fail`` the step fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)

from clientary_xero.connectors.adoption import CENT, Difference, adopt, cents, compare, differences, shown
from clientary_xero.errors import PermanentError

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
CLOSED_STATUSES = ("DELETED", "VOIDED")


def _as_date(value: Any) -> Any:
    """Accept ``YYYY-MM-DD``, an ISO date-time, Xero's ``/Date(…)/`` or a date object."""
    if isinstance(value, datetime):
        return value.date()
    if value is None or value == "":
        return None
    if isinstance(value, str):
        from clientary_xero.connectors.xero.dates import parse_xero_date

        try:
            return parse_xero_date(value, date_only=True)
        except ValueError:
            return value  # pydantic reports it as an invalid date
    return value


XeroDay = Annotated[date, BeforeValidator(_as_date)]
Guid = Annotated[str, Field(pattern=UUID_PATTERN, description="A Xero id (a GUID).")]
Money = Annotated[float, Field(gt=0, allow_inf_nan=False)]


READ_ONLY_MESSAGE = "read-only in Xero: Xero sets it, a request cannot (leave it out)"


class _Input(BaseModel):
    # defer_build: a model's validator is built on first use, so importing every action stays cheap.
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, coerce_numbers_to_str=True, defer_build=True
    )

    # Properties of the Xero object that a request cannot set (readOnly in Xero's OpenAPI
    # description, or documented so): refused as read-only rather than as unknown, so a mapping
    # copied from a Xero answer says why (tests/test_xero_input_coverage.py checks them).
    READ_ONLY: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="wrap")
    @classmethod
    def _refuse_read_only(cls, value: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        if not cls.READ_ONLY or not isinstance(value, Mapping):
            return handler(value)
        given = [key for key in value if key in cls.READ_ONLY]
        if not given:
            return handler(value)
        from pydantic_core import InitErrorDetails, PydanticCustomError

        errors = [
            InitErrorDetails(
                type=PydanticCustomError("read_only", READ_ONLY_MESSAGE), loc=(key,), input=value[key]
            )
            for key in given
        ]
        try:  # the other problems of the same input are reported too
            handler({k: v for k, v in value.items() if k not in cls.READ_ONLY})
        except ValidationError as exc:
            errors += [
                InitErrorDetails(
                    type=PydanticCustomError(e["type"], e["msg"].replace("{", "{{").replace("}", "}}")),
                    loc=e["loc"],
                    input=e["input"],
                )
                for e in exc.errors(include_url=False)
            ]
        raise ValidationError.from_exception_data(cls.__name__, errors)


def where_text(value: str) -> str:
    """A text literal for Xero's ``where`` language."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def money(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def iso_day(record: dict[str, Any], key: str) -> str | None:
    """A document date as ``YYYY-MM-DD`` (from ``/Date(…)/`` or its ``…String`` twin)."""
    from clientary_xero.connectors.xero.dates import parse_xero_date

    return parse_xero_date(record.get(key) or record.get(f"{key}String"), date_only=True)


def iso_time(value: Any) -> str | None:
    from clientary_xero.connectors.xero.dates import parse_xero_date

    return parse_xero_date(value) if isinstance(value, str) else None


# ----------------------------------------------------------------- references
class ContactRef(_Input):
    ContactID: str | None = Field(
        default=None, pattern=r"^[0-9a-fA-F-]{36}$", description="Xero's contact id."
    )
    ContactNumber: str | None = Field(default=None, max_length=50, description="The contact's external id.")

    @model_validator(mode="after")
    def _one_identifier(self) -> ContactRef:
        if not self.ContactID and not self.ContactNumber:
            raise ValueError("give the contact's ContactID or ContactNumber")
        return self

    def identifier(self) -> dict[str, str]:
        # Only the identifier: more fields would update the contact (and could drop its ContactPersons).
        return {"ContactID": self.ContactID} if self.ContactID else {"ContactNumber": str(self.ContactNumber)}

    def adoption_difference(self, field: str, found: Any) -> Difference | None:
        """How a found record's contact differs from this one (None: the same contact)."""
        contact = found if isinstance(found, Mapping) else {}
        if self.ContactID:
            if casefold_equal(contact.get("ContactID"), self.ContactID):
                return None
            wanted = f"ContactID {self.ContactID}"
        else:
            if casefold_equal(contact.get("ContactNumber"), self.ContactNumber):
                return None
            wanted = f"ContactNumber {self.ContactNumber!r}"
        described = shown(contact.get("Name") or contact.get("ContactID"))
        if contact.get("ContactNumber"):
            described += f" (ContactNumber {contact['ContactNumber']!r})"
        return Difference(field, described, wanted)


class AccountRef(_Input):
    Code: str | None = Field(
        default=None, min_length=1, max_length=10, description='Account code, e.g. "090".'
    )
    AccountID: Guid | None = None

    @model_validator(mode="after")
    def _one_identifier(self) -> AccountRef:
        if not self.Code and not self.AccountID:
            raise ValueError("give the account's Code or AccountID")
        return self

    def identifier(self) -> dict[str, str]:
        return {"AccountID": self.AccountID} if self.AccountID else {"Code": str(self.Code)}

    def adoption_difference(self, field: str, found: Any) -> Difference | None:
        account = found if isinstance(found, Mapping) else {}
        key, value = next(iter(self.identifier().items()))
        if casefold_equal(account.get(key), value):
            return None
        known = [f"{k} {account[k]!r}" for k in ("Code", "AccountID") if account.get(k)]
        return Difference(field, " ".join(known) or "none", f"{key} {value!r}")

    def same_as(self, other: AccountRef) -> bool:
        if self.AccountID and other.AccountID:
            return self.AccountID.lower() == other.AccountID.lower()
        return bool(self.Code and other.Code and self.Code == other.Code)


class TrackingDefault(_Input):
    """A contact's default tracking (Xero's SalesTrackingCategory): category and option by name."""

    TrackingCategoryName: str = Field(min_length=1, max_length=100, description="e.g. Region.")
    TrackingOptionName: str = Field(min_length=1, max_length=100, description="e.g. North.")


class LineTracking(_Input):
    """A line's tracking: the category and option by name (Name, Option) or by id."""

    Name: str | None = Field(default=None, max_length=100, description="The tracking category's name.")
    Option: str | None = Field(default=None, max_length=100, description="The option's name.")
    TrackingCategoryID: Guid | None = None
    TrackingOptionID: Guid | None = None

    @model_validator(mode="after")
    def _named(self) -> LineTracking:
        if not (self.Name or self.TrackingCategoryID) or not (self.Option or self.TrackingOptionID):
            raise ValueError(
                "give the category (Name or TrackingCategoryID) and the option (Option or TrackingOptionID)"
            )
        return self


class TrackingRef(_Input):
    """A bank transaction's tracking, by ids (Xero's TrackingReference; its Name and Option are read-only)."""

    READ_ONLY: ClassVar[frozenset[str]] = frozenset({"Name", "Option"})

    TrackingCategoryID: Guid
    TrackingOptionID: Guid


class PurchaseLineItem(_Input):
    """A line of a bill or purchase order (no discounts: Xero allows them on sales documents only)."""

    Description: str = Field(min_length=1, max_length=4000, description="What the line is for.")
    Quantity: float | None = Field(default=None, allow_inf_nan=False, description="1 when omitted.")
    UnitAmount: float | None = Field(default=None, allow_inf_nan=False, description="Up to 4 decimal places.")
    AccountCode: str | None = Field(default=None, max_length=10, description="Needed to approve (AUTHORISE).")
    AccountID: Guid | None = Field(default=None, description="The account by id instead of AccountCode.")
    TaxType: str | None = Field(default=None, max_length=50, description="A tax type from Xero's TaxRates.")
    TaxAmount: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="Xero computes it from the tax rate; give it only to correct Xero's rounding.",
    )
    ItemCode: str | None = Field(
        default=None, max_length=30, description="An item's Code (its price and account apply)."
    )
    LineAmount: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="Xero computes it from Quantity times UnitAmount when omitted.",
    )
    Tracking: list[LineTracking] | None = Field(
        default=None, max_length=2, description="At most 2 tracking categories (Xero's limit)."
    )
    Taxability: Literal["TAXABLE", "NON_TAXABLE", "EXEMPT", "PART_TAXABLE", "NOT_APPLICABLE"] | None = Field(
        default=None, description="US sales tax: how the line is taxed."
    )
    SalesTaxCodeId: float | None = Field(default=None, description="US sales tax: the sales tax code's id.")


class LineItem(PurchaseLineItem):
    DiscountRate: float | None = Field(
        default=None, ge=0, le=100, description="Percent; sales invoices and quotes only."
    )
    DiscountAmount: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="An amount off the line instead of DiscountRate; sales invoices and quotes only.",
    )

    @model_validator(mode="after")
    def _one_discount(self) -> LineItem:
        if self.DiscountRate and self.DiscountAmount:
            raise ValueError("give DiscountRate or DiscountAmount, not both")
        return self


def lines_body(lines: list[Any]) -> list[dict[str, Any]]:
    return [line.model_dump(exclude_none=True) for line in lines]


def day_fields(model: BaseModel, keys: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for key in keys:
        value = getattr(model, key)
        if value is not None:
            out[key] = value.isoformat()
    return out


# ------------------------------------------------------------------- finding
class FindInput(_Input):
    FailIfNotFound: bool = Field(
        default=False,
        description="false (default): nothing found is a success with found: false; "
        "true: the step fails when nothing matches.",
    )
    Multiple: Literal["first", "fail"] = Field(
        default="first",
        description="When several match: 'first' returns the first (count and matches say how many); "
        "'fail' fails the step.",
    )

    def criteria(self) -> str:
        skip = {"FailIfNotFound", "Multiple"}
        given = {
            k: v
            for k, v in self.model_dump(exclude_none=True, exclude_defaults=True).items()
            if k not in skip
        }
        return ", ".join(f"{k} {v!r}" if isinstance(v, str) else f"{k} {v}" for k, v in given.items())


def find_result(
    what: str,
    data: FindInput,
    records: list[dict[str, Any]],
    flat: Callable[[dict[str, Any]], dict[str, Any]],
    total: int | None = None,
) -> dict[str, Any]:
    """The common output of a find action (see the module docstring)."""
    count = max(total or 0, len(records))
    if not records:
        if data.FailIfNotFound:
            raise PermanentError(
                f"no Xero {what} matches {data.criteria()} (FailIfNotFound is true)", service="xero"
            )
        return {**dict.fromkeys(flat({}), None), "found": False, "count": 0, "matches": []}
    if count > 1 and data.Multiple == "fail":
        raise PermanentError(
            f"{count} Xero {what}s match {data.criteria()}; Multiple is 'fail'", service="xero"
        )
    flattened = [flat(r) for r in records]
    return {**flattened[0], "found": True, "count": count, "matches": flattened}


def total_of(answer: Any) -> int | None:
    pagination = answer.get("pagination") if isinstance(answer, dict) else None
    value = pagination.get("itemCount") if isinstance(pagination, dict) else None
    return value if isinstance(value, int) else None


def casefold_equal(left: Any, right: Any) -> bool:
    return str(left or "").casefold() == str(right or "").casefold()


def made_by_this_run(ctx: Any, record: dict[str, Any]) -> bool:
    """Whether ``record`` may be what an earlier try of this step made: not created (or, for records
    without ``CreatedDateUTC``, last updated) before the run began (``ctx.not_before``). A record
    with neither date, or one that cannot be read, cannot be ruled out. Its limit: an older record
    edited after the run began passes too (the other criteria of each lookup still apply)."""
    from clientary_xero.connectors.xero.dates import parse_xero_date

    if not ctx.not_before:
        return True
    try:
        when = parse_xero_date(record.get("CreatedDateUTC") or record.get("UpdatedDateUTC"))
        if not when:
            return True
        moment = datetime.fromisoformat(when)
    except ValueError:
        return True
    if moment.tzinfo is None:  # Xero's *UTC fields without an offset are UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() >= ctx.not_before


# ------------------------------------------------------------------- adopting
def line_total(lines: Iterable[Any], unitdp: int = 2) -> Decimal:
    """What Xero makes of the step's lines: quantity (4 dp, 1 when omitted) times unit amount (kept
    to ``unitdp`` decimals, the request's ``unitdp``), less the discount, each line rounded to the
    cent; a line without a unit amount counts its LineAmount."""
    total = Decimal(0)
    step = Decimal(1).scaleb(-unitdp)
    for line in lines:
        quantity = Decimal(str(line.Quantity)) if line.Quantity is not None else Decimal(1)
        quantity = quantity.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        if line.UnitAmount is not None:
            amount = quantity * Decimal(str(line.UnitAmount)).quantize(step, rounding=ROUND_HALF_UP)
        else:
            amount = Decimal(str(line.LineAmount or 0))
        discount = getattr(line, "DiscountRate", None)
        if discount:
            amount = amount * (Decimal(100) - Decimal(str(discount))) / Decimal(100)
        off = getattr(line, "DiscountAmount", None)
        if off and line.UnitAmount is not None:
            amount -= Decimal(str(off))
        total += cents(amount) or Decimal(0)
    return total


def found_line_total(record: Mapping[str, Any]) -> Any:
    """The sum of a found document's line amounts, from its totals: Xero computes the tax, so the
    lines are compared, not the Total (which includes it) — SubTotal, or Total when the amounts
    are tax-inclusive."""
    inclusive = str(record.get("LineAmountTypes") or "").casefold() == "inclusive"
    return record.get("Total") if inclusive else record.get("SubTotal")


def xero_value(record: Mapping[str, Any], key: str) -> Any:
    """A found record's field, its ``/Date(…)/`` read as ``YYYY-MM-DD``."""
    value = record.get(key)
    if isinstance(value, str) and value.startswith("/Date("):
        return iso_day(dict(record), key)
    return value


def _made_before_run(ctx: Any, record: Mapping[str, Any]) -> Difference | None:
    if made_by_this_run(ctx, dict(record)):
        return None
    when = iso_time(record.get("CreatedDateUTC") or record.get("UpdatedDateUTC"))
    moment = datetime.fromisoformat(when) if when else None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return Difference("made", f"{shown(moment) if moment else '?'}, before this run began", "")


def xero_differences(
    ctx: Any, data: BaseModel, record: Mapping[str, Any], keys: Iterable[str], *, unitdp: int = 2
) -> list[Difference]:
    """What differs between the step's input and a record its retry found: the given ``keys`` of
    the input (``LineItems`` as their total), a closed status, a record older than the run."""
    keys = list(keys)
    found = differences(data, record, [k for k in keys if k != "LineItems"], read=xero_value)
    lines = getattr(data, "LineItems", None) if "LineItems" in keys else None
    # A line without UnitAmount or LineAmount leaves its amount to Xero (an ItemCode's price): the
    # total is then not the step's to give, and is not compared.
    if lines and all(line.UnitAmount is not None or line.LineAmount is not None for line in lines):
        # One cent a line: Xero may round a line the other way than this sum does.
        slack = CENT * len(lines)
        difference = compare(
            "line total", line_total(lines, unitdp), found_line_total(record), tolerance=slack
        )
        if difference is not None:
            found.append(difference)
    if record.get("Status") in CLOSED_STATUSES:
        found.append(Difference("Status", shown(record.get("Status")), ""))
    made = _made_before_run(ctx, record)
    if made is not None:
        found.append(made)
    return found


def _with_contact_number(ctx: Any, data: BaseModel, candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The candidates with their contact's ContactNumber filled in, when the step names its contact
    by ContactNumber and a candidate's contact comes without one (Xero's documents name their
    contact by ContactID and Name; the spec's examples show no ContactNumber there): one
    ``GET /Contacts?where=ContactNumber==…`` tells whether that contact is ours."""
    ref = getattr(data, "Contact", None)
    if not isinstance(ref, ContactRef) or ref.ContactID or not ref.ContactNumber:
        return candidates
    if all("ContactNumber" in (c.get("Contact") or {}) for c in candidates):
        return candidates
    where = f"ContactNumber=={where_text(str(ref.ContactNumber))}"
    answer = ctx.service("xero").request("GET", "/Contacts", params={"where": where})
    contact_ids = {str(c.get("ContactID") or "").lower() for c in answer.get("Contacts") or []}
    out = []
    for candidate in candidates:
        contact = dict(candidate.get("Contact") or {})
        if "ContactNumber" not in contact and str(contact.get("ContactID") or "").lower() in contact_ids:
            contact["ContactNumber"] = ref.ContactNumber
            candidate = {**candidate, "Contact": contact}
        out.append(candidate)
    return out


def adopt_found(
    ctx: Any,
    candidates: Iterable[dict[str, Any]],
    data: BaseModel,
    keys: Iterable[str],
    *,
    what: str,
    name_of: Callable[[dict[str, Any]], str],
    hint: str,
    unitdp: int = 2,
    view: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """The record a retry lookup found that this step would have written (``adoption.adopt``):
    None when nothing was found, a PermanentError naming what differs when what was found is not
    it. ``view`` maps a record into the input's field names first (the Projects API's camelCase)."""
    keys = list(keys)
    see = view or (lambda record: record)
    candidates = _with_contact_number(ctx, data, list(candidates))
    return adopt(
        candidates,
        lambda record: xero_differences(ctx, data, see(record), keys, unitdp=unitdp),
        service="xero",
        what=what,
        name_of=name_of,
        hint=hint,
    )


# ------------------------------------------------------------------- batches
def put_many(
    calls: list[tuple[Any, Any]],
    key: str,
    plural: str,
    output: Callable[[dict[str, Any]], dict[str, Any]],
    params: dict[str, Any] | None = None,
) -> list[dict[str, Any] | Exception]:
    """The first attempts of several create steps as one ``PUT /{plural}`` (engine/batching.py):
    each element's outcome is its own step's, as if it had been sent alone (``output`` of the
    element, or the ``PermanentError`` naming Xero's messages for it)."""
    from clientary_xero.connectors.xero.client import answered_elements, checked_elements

    client = calls[0][0].service("xero")
    answer = client.request(
        "PUT",
        f"/{plural}",
        params=params,
        json={plural: [data.body() for _, data in calls]},
        idempotency_key=key,
    )
    out: list[dict[str, Any] | Exception] = []
    for element in answered_elements(answer, plural, len(calls)):
        try:
            out.append(output(checked_elements({plural: [element]}, plural)[0]))
        except PermanentError as exc:  # this element refused: its own step fails, the others go on
            out.append(exc)
    return out
