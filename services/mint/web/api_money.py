"""The money pages: dashboard, top up, send money (recipient found by email), withdraw, and
transactions (list with filters and paging, detail, cancel a pending one).

Every money form carries an ``Idempotency-Key`` generated when the form is rendered: a double
click or a resubmitted form sends the same key, so the platform pays once and replays its
first answer (services.md §3, conventions.md "Idempotency")."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any, Final
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import Response

from mint.web.client import Answer
from mint.web.money import AmountError, format_money, parse_amount
from mint.web.problems import FormErrors, form_errors
from mint.web.views import (
    PageNotFound,
    PageRoute,
    User,
    Visit,
    new_key,
    redirect,
    render,
    with_notice,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)

TXN = "/api/v1/transactions"
Text = Annotated[str, Form()]
CATEGORIES: Final = ("FOOD", "TRANSPORT", "ENTERTAINMENT", "UTILITIES", "OTHER")
STATUSES: Final = ("PENDING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED", "REVERSED")
TYPES: Final = ("TOPUP", "TRANSFER", "WITHDRAWAL")
IN_PROGRESS: Final = "idempotency_request_in_progress"
RETRIED: Final = frozenset({IN_PROGRESS, "too_many_requests"})


# ---- dashboard ---------------------------------------------------------------------------------


@router.get("/dashboard")
def dashboard(state: User, request: Request) -> Response:
    wallet = state.call("GET", "/api/v1/wallet")
    recent = state.call("GET", TXN, params={"limit": "5"})
    me = state.call("GET", "/api/v1/auth/me")
    return render(
        state,
        "dashboard.html",
        request=request,
        title="Your money",
        user=me.json() if me.ok else {},
        wallet=wallet.json() if wallet.ok else None,
        recent=[_row(_me(state), t) for t in recent.json()["items"]] if recent.ok else [],
    )


@router.get("/dashboard/balance")
def balance_panel(state: User, request: Request) -> Response:
    """The balance panel alone (htmx polls it while a new wallet is being created)."""
    wallet = state.call("GET", "/api/v1/wallet")
    return render(
        state,
        "balance.html",
        request=request,
        title="Your money",
        wallet=wallet.json() if wallet.ok else None,
    )


# ---- moving money --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Movement:
    kind: str  # topup | transfer | withdraw
    template: str
    title: str


TOP_UP = Movement("topup", "top_up.html", "Top up")
SEND = Movement("transfer", "send.html", "Send money")
WITHDRAW = Movement("withdraw", "withdraw.html", "Withdraw")


def _money_form(
    state: Visit,
    request: Request,
    movement: Movement,
    *,
    status: int = 200,
    key: str | None = None,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    wallet = state.call("GET", "/api/v1/wallet")
    return render(
        state,
        movement.template,
        request=request,
        status=status,
        title=movement.title,
        idempotency_key=key or new_key(),
        wallet=wallet.json() if wallet.ok else None,
        categories=CATEGORIES,
        errors=errors,
        values=values or {},
    )


def _submit(state: Visit, movement: Movement, key: str, body: dict[str, Any]) -> Answer:
    """POST the movement with ``key``; an "in progress" answer (the other click of a double
    click is still running) is waited out until the first answer can be replayed."""
    deadline = time.monotonic() + state.wiring.settings.in_progress_wait_seconds
    while True:
        answer = state.call(
            "POST",
            f"{TXN}/{movement.kind}",
            json=body,
            headers={"Idempotency-Key": key},
            allow_unavailable=True,
        )
        # "in progress": the other click's request is running; "too many requests": this
        # user's requests are bounded and the key was released. Both are retried with the key.
        if answer.code not in RETRIED or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def _settle(
    state: Visit,
    request: Request,
    movement: Movement,
    key: str,
    body: dict[str, Any],
    values: dict[str, str],
    fields: dict[str, str],
    done: str,
) -> Response:
    answer = _submit(state, movement, key, body)
    if answer.status in (201, 202):
        txn = answer.json()
        notice = (
            done
            if answer.status == 201
            else "Your payment is being reviewed; it will complete or be cancelled."
        )
        return redirect(with_notice(f"/transactions/{txn['id']}", notice), request)
    errors = form_errors(answer.problem, fields)
    # The outcome is unknown (still processing, or this key is still running): the form keeps
    # its key, so sending it again can only replay the first answer — never pay twice.
    unknown = answer.code == IN_PROGRESS or answer.problem.get("transaction_status") == "PROCESSING"
    if unknown:
        errors = FormErrors(
            general=["This payment is still being processed. Check Activity before trying again."]
        )
    return _money_form(
        state,
        request,
        movement,
        status=answer.status if answer.status >= 400 else 422,
        key=key if unknown else None,
        errors=errors,
        values=values,
    )


def _amount(typed: str, errors: FormErrors) -> int | None:
    try:
        return parse_amount(typed)
    except AmountError as exc:
        errors.add("amount", str(exc))
        return None


@router.get("/top-up")
def top_up_page(state: User, request: Request) -> Response:
    return _money_form(state, request, TOP_UP)


@router.post("/top-up")
def top_up(
    state: User, request: Request, amount: Text = "", note: Text = "", idempotency_key: Text = ""
) -> Response:
    values = {"amount": amount, "note": note}
    errors = FormErrors()
    cents = _amount(amount, errors)
    if cents is None or not idempotency_key:
        return _money_form(state, request, TOP_UP, status=422, errors=errors, values=values)
    body: dict[str, Any] = {"amount": cents, **({"description": note} if note.strip() else {})}
    return _settle(
        state, request, TOP_UP, idempotency_key, body, values,
        {"amount": "amount", "description": "note"},
        f"Added {format_money(cents)} to your wallet.",
    )  # fmt: skip


@router.get("/withdraw")
def withdraw_page(state: User, request: Request) -> Response:
    return _money_form(state, request, WITHDRAW)


@router.post("/withdraw")
def withdraw(
    state: User, request: Request, amount: Text = "", idempotency_key: Text = ""
) -> Response:
    values = {"amount": amount}
    errors = FormErrors()
    cents = _amount(amount, errors)
    if cents is None or not idempotency_key:
        return _money_form(state, request, WITHDRAW, status=422, errors=errors, values=values)
    return _settle(
        state, request, WITHDRAW, idempotency_key, {"amount": cents}, values,
        {"amount": "amount"}, f"Withdrew {format_money(cents)}.",
    )  # fmt: skip


@router.get("/send")
def send_page(state: User, request: Request, to: Annotated[str, Query()] = "") -> Response:
    return _money_form(state, request, SEND, values={"recipient": to})


@router.get("/send/recipients")
def recipients(state: User, request: Request, recipient: Annotated[str, Query()] = "") -> Response:
    """Suggestions for the recipient field (htmx, as the sender types): people whose email
    starts with what was typed (auth's user search, 3 characters at least)."""
    typed = recipient.strip()
    found: list[dict[str, Any]] = []
    if len(typed) >= 3:
        answer = state.call("GET", "/api/v1/auth/users/search", params={"email": typed})
        if answer.ok:
            found = list(answer.json()["items"])
    return render(
        state, "recipients.html", request=request, title="Recipients", found=found, typed=typed
    )


@router.post("/send")
def send(
    state: User,
    request: Request,
    recipient: Text = "",
    amount: Text = "",
    note: Text = "",
    category: Text = "",
    idempotency_key: Text = "",
) -> Response:
    values = {"recipient": recipient, "amount": amount, "note": note, "category": category}
    errors = FormErrors()
    recipient_id = _recipient_id(state, recipient.strip(), errors)
    cents = _amount(amount, errors)
    if category and category not in CATEGORIES:
        errors.add("category", "Choose a category from the list.")
    if errors or recipient_id is None or cents is None or not idempotency_key:
        return _money_form(state, request, SEND, status=422, errors=errors, values=values)
    body: dict[str, Any] = {"recipient_id": recipient_id, "amount": cents}
    if note.strip():
        body["description"] = note
    if category:
        body["category"] = category
    return _settle(
        state, request, SEND, idempotency_key, body, values,
        {"recipient_id": "recipient", "amount": "amount", "description": "note",
         "category": "category"},
        f"Sent {format_money(cents)} to {recipient.strip()}.",
    )  # fmt: skip


def _recipient_id(state: Visit, email: str, errors: FormErrors) -> str | None:
    """The user whose email is exactly ``email`` (auth's user search by prefix, the caller
    excluded)."""
    if not email:
        errors.add("recipient", "Enter the email of the person you are paying.")
        return None
    if email.lower() == str(state.claims.get("email", "")).lower():
        errors.add("recipient", "You can't send money to yourself.")
        return None
    if len(email) < 3 or "@" not in email:
        errors.add("recipient", "Enter the full email address of a Mint user.")
        return None
    answer = state.call("GET", "/api/v1/auth/users/search", params={"email": email})
    if not answer.ok:  # the search refused for a reason of its own: shown on the field
        errors.add("recipient", form_errors(answer.problem, set()).general[0])
        return None
    for person in answer.json()["items"]:
        if str(person["email"]).lower() == email.lower():
            return str(person["id"])
    errors.add("recipient", "No Mint user has this email.")
    return None


# ---- transactions ------------------------------------------------------------------------------


def _me(state: Visit) -> str:
    return str(state.claims.get("sub", ""))


def _row(me: str, txn: dict[str, Any]) -> dict[str, Any]:
    """A transaction as the user ``me`` sees it: money in (+) or out (-)."""
    outgoing = txn["type"] == "WITHDRAWAL" or (
        txn["type"] == "TRANSFER" and str(txn.get("sender_id")) == me
    )
    direction = "out" if outgoing else "in"
    if txn["type"] == "TRANSFER":
        what = "Sent" if outgoing else "Received"
    else:
        what = {"TOPUP": "Top-up", "WITHDRAWAL": "Withdrawal"}.get(txn["type"], txn["type"])
    return {
        **txn,
        "direction": direction,
        "signed_amount": -txn["amount"] if outgoing else txn["amount"],
        "what": what,
        "can_cancel": txn["status"] == "PENDING" and str(txn.get("sender_id")) == me,
    }


@router.get("/transactions")
def transactions(
    state: User,
    request: Request,
    status: Annotated[str, Query()] = "",
    type: Annotated[str, Query()] = "",
    cursor: Annotated[str, Query()] = "",
) -> Response:
    params = {"limit": "20"}
    if status in STATUSES:
        params["status"] = status
    if type in TYPES:
        params["type"] = type
    filters = dict(params)
    if cursor:
        params["cursor"] = cursor
    answer = state.call("GET", TXN, params=params)
    if not answer.ok:  # a stale cursor: back to the first page of these filters
        answer = state.call("GET", TXN, params=filters)
    page = answer.json()
    filters.pop("limit")
    me = _me(state)
    next_cursor = page.get("next_cursor")
    return render(
        state,
        "transactions.html",
        request=request,
        title="Activity",
        items=[_row(me, t) for t in page["items"]],
        status_filter=filters.get("status", ""),
        type_filter=filters.get("type", ""),
        statuses=STATUSES,
        types=TYPES,
        next_url=f"/transactions?{urlencode({**filters, 'cursor': next_cursor})}"
        if next_cursor
        else None,
        first_url=f"/transactions?{urlencode(filters)}" if cursor else None,
    )


def _transaction(state: Visit, txn_id: str) -> dict[str, Any]:
    answer = state.call("GET", f"{TXN}/{quote(txn_id, safe='')}")
    if answer.status in (404, 422):
        raise PageNotFound()
    return answer.json()


@router.get("/transactions/{txn_id}")
def transaction(state: User, request: Request, txn_id: str) -> Response:
    txn = _row(_me(state), _transaction(state, txn_id))
    return render(state, "transaction.html", request=request, title="Transaction", txn=txn)


@router.post("/transactions/{txn_id}/cancel")
def cancel(state: User, request: Request, txn_id: str) -> Response:
    answer = state.call("POST", f"{TXN}/{quote(txn_id, safe='')}/cancel")
    if answer.status == 404:
        raise PageNotFound()
    if answer.ok:
        notice = "Cancelled; the money is back in your available balance."
        return redirect(with_notice(f"/transactions/{txn_id}", notice), request)
    txn = _row(_me(state), _transaction(state, txn_id))
    errors = form_errors(answer.problem, set())
    return render(
        state, "transaction.html", request=request, status=answer.status, title="Transaction",
        txn=txn, errors=errors,
    )  # fmt: skip
