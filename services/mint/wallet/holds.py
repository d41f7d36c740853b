"""Holds: reserve funds (``held``), then capture them into a transfer or release them.

All three operations are idempotent: a repeated ``hold_id`` returns the hold as it is; capturing
an already captured hold with the same ``transfer_id`` returns the posted transfer; releasing a
released hold changes nothing. Lock order is the same as transfers: accounts (by id), then the
hold row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mint.wallet import domain
from mint.wallet.domain import Conflict, EntryKind, HoldStatus, NotFound, Reason, Refused
from mint.wallet.models import Account, Hold
from mint.wallet.store import (
    TransferResult,
    account_id,
    emit_wallet_event,
    get_transfer,
    insert_unique,
    lock_accounts,
    post_entry,
    state_of,
    transfer_result,
)


@dataclass(frozen=True)
class HoldResult:
    hold_id: str
    account: str
    amount: int
    currency: str
    status: str
    transfer_id: str | None = None  # the capture's transfer_id once CAPTURED
    replayed: bool = False


def get_hold(session: Session, hold_id: str, *, replayed: bool = False) -> HoldResult | None:
    row = session.execute(
        select(Hold, Account.code)
        .join(Account, Account.id == Hold.account_id)
        .where(Hold.hold_id == hold_id)
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        return None
    hold, code = row
    return _view(hold, code, replayed)


def place_hold(
    session: Session, hold_id: str, account: str, amount: int, currency: str = domain.CURRENCY
) -> HoldResult:
    """Reserve ``amount`` on ``account``: refused like a transfer's sender (frozen, not enough
    available). A repeated ``hold_id`` returns the existing hold with ``replayed=True``."""
    domain.validate_id(hold_id, "hold_id")
    if (done := get_hold(session, hold_id, replayed=True)) is not None:
        return done
    domain.validate_amount(amount)
    currency = domain.normalize_currency(currency)
    acc_id = account_id(session, account)
    acc = lock_accounts(session, acc_id)[acc_id]
    if (done := get_hold(session, hold_id, replayed=True)) is not None:
        return done
    reason = domain.hold_refusal(state_of(acc), amount, currency)
    if reason is not None:
        raise Refused(reason)
    hold = Hold(
        id=uuid.uuid4(),
        hold_id=hold_id,
        account_id=acc.id,
        amount=amount,
        currency=currency,
        status=HoldStatus.OPEN.value,
    )
    if not insert_unique(session, hold):
        done = get_hold(session, hold_id, replayed=True)
        if done is None:
            raise Conflict("hold_id_conflict")
        return done
    acc.held += amount
    session.flush()
    _emit_hold(session, "wallet.hold_placed", hold, acc)
    return _view(hold, acc.code)


def capture_hold(
    session: Session, hold_id: str, to_account: str, transfer_id: str, description: str = ""
) -> TransferResult:
    """Move a hold's amount from its account to ``to_account`` as transfer ``transfer_id``."""
    domain.validate_id(hold_id, "hold_id")
    domain.validate_id(transfer_id, "transfer_id")
    description = domain.validate_description(description)
    hold = _hold(session, hold_id)
    if (done := _capture_replay(session, hold, transfer_id)) is not None:
        return done
    to_id = account_id(session, to_account)
    accounts = lock_accounts(session, hold.account_id, to_id)
    hold = _hold(session, hold_id, lock=True)
    if (done := _capture_replay(session, hold, transfer_id)) is not None:
        return done
    sender, recipient = accounts[hold.account_id], accounts[to_id]
    reason = domain.capture_refusal(state_of(sender), state_of(recipient))
    if reason is not None:
        raise Refused(reason)
    entry = post_entry(
        session,
        transfer_id=transfer_id,
        kind=EntryKind.CAPTURE,
        sender=sender,
        recipient=recipient,
        amount=hold.amount,
        currency=hold.currency,
        description=description,
        release_held=hold.amount,
    )
    if entry is None:
        raise Conflict("transfer_id_conflict", f"transfer_id {transfer_id} is already used")
    hold.status = HoldStatus.CAPTURED.value
    hold.capture_transfer_id = transfer_id
    session.flush()
    _emit_hold(session, "wallet.hold_captured", hold, sender)
    return transfer_result(entry, sender.code, recipient.code, None)


def release_hold(session: Session, hold_id: str) -> HoldResult:
    """Give the held amount back to ``available``. Releasing twice is a no-op."""
    domain.validate_id(hold_id, "hold_id")
    hold = _hold(session, hold_id)
    if (done := _release_replay(session, hold)) is not None:
        return done
    acc = lock_accounts(session, hold.account_id)[hold.account_id]
    hold = _hold(session, hold_id, lock=True)
    if (done := _release_replay(session, hold)) is not None:
        return done
    acc.held -= hold.amount
    hold.status = HoldStatus.RELEASED.value
    session.flush()
    _emit_hold(session, "wallet.hold_released", hold, acc)
    return _view(hold, acc.code)


# ---- helpers --------------------------------------------------------------------------------


def _hold(session: Session, hold_id: str, *, lock: bool = False) -> Hold:
    stmt = select(Hold).where(Hold.hold_id == hold_id).execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update()
    hold = session.execute(stmt).scalar_one_or_none()
    if hold is None:
        raise NotFound("hold_not_found", f"no hold {hold_id}")
    return hold


def _capture_replay(session: Session, hold: Hold, transfer_id: str) -> TransferResult | None:
    if hold.status == HoldStatus.OPEN:
        return None
    if hold.status == HoldStatus.RELEASED:
        raise Refused(Reason.HOLD_RELEASED)
    if hold.capture_transfer_id != transfer_id:
        raise Refused(Reason.HOLD_ALREADY_CAPTURED)
    done = get_transfer(session, transfer_id, replayed=True)
    assert done is not None, "a captured hold always has its entry"
    return done


def _release_replay(session: Session, hold: Hold) -> HoldResult | None:
    if hold.status == HoldStatus.OPEN:
        return None
    if hold.status == HoldStatus.CAPTURED:
        raise Refused(Reason.HOLD_ALREADY_CAPTURED)
    return get_hold(session, hold.hold_id, replayed=True)


def _view(hold: Hold, code: str, replayed: bool = False) -> HoldResult:
    return HoldResult(
        hold_id=hold.hold_id,
        account=code,
        amount=hold.amount,
        currency=hold.currency,
        status=hold.status,
        transfer_id=hold.capture_transfer_id,
        replayed=replayed,
    )


def _emit_hold(session: Session, type_: str, hold: Hold, account: Account) -> None:
    emit_wallet_event(
        session,
        type_,
        subject=hold.hold_id,
        data={
            "hold_id": hold.hold_id,
            "account": account.code,
            "amount": hold.amount,
            "currency": hold.currency,
        },
        user_id=account.owner_user_id,
        actor=str(account.owner_user_id) if account.owner_user_id else "system",
    )
