"""The wallet's use cases — the only place the ledger changes.

Each runs inside the caller's unit of work (a ``Session`` from ``db.session()``, or a
consumer's processing transaction), takes the account row locks it needs in a fixed order
(by id), writes its events to the outbox in the same transaction and raises the kit's domain
errors (``Invalid``, ``NotFound``, ``Refused``, ``Conflict``). HTTP, gRPC, the consumer and the
CLI all call these functions.

Every money operation is idempotent by its client-chosen id: a repeated ``transfer_id`` /
``hold_id`` / ``reversal_id`` returns the first result with ``replayed=True``.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from mint.contracts.money import CURRENCY, SYSTEM_ACCOUNTS, USER_ACCOUNT_PREFIX, user_account
from mint.contracts.wallet import (
    HoldCaptured,
    HoldEvent,
    HoldPlaced,
    HoldReleased,
    TransferPosted,
    WalletCreated,
    WalletFrozen,
    WalletUnfrozen,
)
from mint.kit.domain import Conflict, DomainError, NotFound, Refused
from mint.kit.events import emit
from mint.kit.time import utcnow
from mint.wallet import domain, store
from mint.wallet.domain import AccountKind, AccountStatus, EntryKind, HoldStatus, Reason
from mint.wallet.models import Account, Hold
from mint.wallet.store import HistoryItem, HoldResult, TransferResult, WalletView

# ---- wallets --------------------------------------------------------------------------------


def open_wallet(session: Session, user_id: uuid.UUID) -> tuple[WalletView, bool]:
    """The user's wallet, created if missing (``wallet.created`` only when created). Returns
    the wallet and whether it is new; safe to repeat and to race."""
    new_id = store.insert_account(
        session, code=user_account(user_id), kind=AccountKind.USER, owner_user_id=user_id
    )
    if new_id is not None:
        event = WalletCreated(wallet_id=new_id, user_id=user_id, currency=CURRENCY)
        emit(session, event, actor=str(user_id))
    wallet = store.get_wallet(session, user_id)
    assert wallet is not None
    return wallet, new_id is not None


def ensure_system_accounts(session: Session) -> None:
    """``external:funding`` and ``external:payout`` exist (idempotent, safe with replicas)."""
    for code in SYSTEM_ACCOUNTS:
        store.insert_account(session, code=code, kind=AccountKind.SYSTEM, owner_user_id=None)


def get_wallet(session: Session, user_id: uuid.UUID) -> WalletView:
    wallet = store.get_wallet(session, user_id)
    if wallet is None:
        raise NotFound("wallet_not_found", "no wallet yet")
    return wallet


def set_frozen(session: Session, user_id: uuid.UUID, frozen: bool) -> WalletView:
    """Freeze or unfreeze a user's wallet; ``wallet.frozen`` / ``wallet.unfrozen`` only when
    the status changes (a repeat is a no-op)."""
    found = store.wallet_id_of(session, user_id)
    if found is None:
        raise NotFound("wallet_not_found", f"no wallet for user {user_id}")
    account = store.lock_accounts(session, found)[found]
    target = AccountStatus.FROZEN if frozen else AccountStatus.ACTIVE
    if account.status != target:
        account.status = target.value
        session.flush()
        changed = WalletFrozen if frozen else WalletUnfrozen
        emit(session, changed(wallet_id=account.id, user_id=user_id), actor="system")
    return store.wallet_view(account)


def history(
    session: Session, user_id: uuid.UUID, limit: int, cursor: str | None = None
) -> tuple[list[HistoryItem], str | None]:
    """The user's postings, newest first; the opaque cursor of the next page, if any."""
    account = store.wallet_id_of(session, user_id)
    if account is None:
        raise NotFound("wallet_not_found", "no wallet yet")
    before = domain.decode_cursor(cursor) if cursor else None
    items, after = store.history(session, account, limit, before)
    return items, (domain.encode_cursor(*after) if after is not None else None)


# ---- transfers ------------------------------------------------------------------------------


def transfer(
    session: Session,
    transfer_id: str,
    from_code: str,
    to_code: str,
    amount: int,
    currency: str = CURRENCY,
    description: str = "",
) -> TransferResult:
    """Post a transfer, or return the first result for a ``transfer_id`` already posted (a
    replay is answered whatever else it asks: the first answer stands)."""
    domain.validate_id(transfer_id, "transfer_id")
    try:
        domain.validate_amount(amount)
        currency = domain.normalize_currency(currency)
        description = domain.validate_description(description)
        from_code = domain.normalize_account_code(from_code)
        to_code = domain.normalize_account_code(to_code)
        if from_code == to_code:
            raise Refused(Reason.SELF_TRANSFER)
        accounts = store.accounts_for_movement(session, from_code, to_code)
        for code in (from_code, to_code):
            if code not in accounts:
                raise _no_account(code)
    except DomainError:
        if (done := store.get_transfer(session, transfer_id, replayed=True)) is not None:
            return done
        raise
    sender, recipient = accounts[from_code], accounts[to_code]
    reason = domain.transfer_refusal(
        store.state_of(sender), store.state_of(recipient), amount, currency
    )
    if reason is not None:  # a retry of a transfer that has spent the money is answered too
        if (done := store.get_transfer(session, transfer_id, replayed=True)) is not None:
            return done
        raise Refused(reason)
    posted = _post_entry(
        session,
        transfer_id=transfer_id,
        kind=EntryKind.TRANSFER,
        sender=sender,
        recipient=recipient,
        amount=amount,
        currency=currency,
        description=description,
    )
    if posted is None:
        # The id is taken: a retry, or a concurrent request with the same id that committed
        # while this one waited for the account locks (or, for two system accounts, for its
        # insert). Its first result is the answer.
        done = store.get_transfer(session, transfer_id, replayed=True)
        if done is None:
            raise Conflict("transfer_id_conflict")
        return done
    return posted


def get_transfer(session: Session, transfer_id: str) -> TransferResult:
    domain.validate_id(transfer_id, "transfer_id")
    result = store.get_transfer(session, transfer_id)
    if result is None:
        raise NotFound("transfer_not_found", f"no transfer {transfer_id}")
    return result


def reverse(session: Session, transfer_id: str, reversal_id: str) -> TransferResult:
    """Post the mirror entry of ``transfer_id`` under ``reversal_id`` (idempotent by it)."""
    domain.validate_id(transfer_id, "transfer_id")
    domain.validate_id(reversal_id, "reversal_id")
    original = store.entry_by_transfer_id(session, transfer_id)
    if original is None:
        raise NotFound("transfer_not_found", f"no transfer {transfer_id}")
    if (done := _reversal_replay(session, transfer_id, reversal_id)) is not None:
        return done
    if original.kind == EntryKind.REVERSAL:
        raise Refused(Reason.NOT_REVERSIBLE)
    accounts = store.lock_accounts(session, original.from_account_id, original.to_account_id)
    if (done := _reversal_replay(session, transfer_id, reversal_id)) is not None:
        return done
    if store.is_reversed(session, original.id):
        raise Refused(Reason.ALREADY_REVERSED)
    payer, payee = accounts[original.to_account_id], accounts[original.from_account_id]
    reason = domain.reversal_refusal(store.state_of(payer), original.amount)
    if reason is not None:
        raise Refused(reason)
    posted = _post_entry(
        session,
        transfer_id=reversal_id,
        kind=EntryKind.REVERSAL,
        sender=payer,
        recipient=payee,
        amount=original.amount,
        currency=original.currency,
        description=f"Reversal of {transfer_id}",
        reversal_of=(original.id, transfer_id),
        actor="system",
    )
    if posted is None:
        if (done := _reversal_replay(session, transfer_id, reversal_id)) is not None:
            return done
        raise Refused(Reason.ALREADY_REVERSED)
    return posted


# ---- holds ----------------------------------------------------------------------------------


def place_hold(
    session: Session, hold_id: str, account: str, amount: int, currency: str = CURRENCY
) -> HoldResult:
    """Reserve ``amount`` on ``account``: refused like a transfer's sender (frozen, not enough
    available). A repeated ``hold_id`` returns the existing hold with ``replayed=True``."""
    domain.validate_id(hold_id, "hold_id")
    if (done := store.get_hold(session, hold_id, replayed=True)) is not None:
        return done
    domain.validate_amount(amount)
    currency = domain.normalize_currency(currency)
    acc_id = _account_id(session, domain.normalize_account_code(account))
    acc = store.lock_accounts(session, acc_id)[acc_id]
    if (done := store.get_hold(session, hold_id, replayed=True)) is not None:
        return done
    reason = domain.hold_refusal(store.state_of(acc), amount, currency)
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
    if not store.insert_unique(session, hold):
        done = store.get_hold(session, hold_id, replayed=True)
        if done is None:
            raise Conflict("hold_id_conflict")
        return done
    acc.held += amount
    session.flush()
    _emit_hold(session, HoldPlaced, hold, acc)
    return store.hold_result(hold, acc.code)


def capture_hold(
    session: Session, hold_id: str, to_account: str, transfer_id: str, description: str = ""
) -> TransferResult:
    """Move a hold's amount from its account to ``to_account`` as transfer ``transfer_id``.
    Lock order as transfers: accounts (by id), then the hold row."""
    domain.validate_id(hold_id, "hold_id")
    domain.validate_id(transfer_id, "transfer_id")
    description = domain.validate_description(description)
    hold = _hold(session, hold_id)
    if (done := _capture_replay(session, hold, transfer_id)) is not None:
        return done
    to_id = _account_id(session, domain.normalize_account_code(to_account))
    accounts = store.lock_accounts(session, hold.account_id, to_id)
    hold = _hold(session, hold_id, lock=True)
    if (done := _capture_replay(session, hold, transfer_id)) is not None:
        return done
    sender, recipient = accounts[hold.account_id], accounts[to_id]
    reason = domain.capture_refusal(store.state_of(sender), store.state_of(recipient))
    if reason is not None:
        raise Refused(reason)
    posted = _post_entry(
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
    if posted is None:
        raise Conflict("transfer_id_conflict", f"transfer_id {transfer_id} is already used")
    hold.status = HoldStatus.CAPTURED.value
    hold.capture_transfer_id = transfer_id
    session.flush()
    _emit_hold(session, HoldCaptured, hold, sender)
    return posted


def release_hold(session: Session, hold_id: str) -> HoldResult:
    """Give the held amount back to ``available``. Releasing twice is a no-op."""
    domain.validate_id(hold_id, "hold_id")
    hold = _hold(session, hold_id)
    if (done := _release_replay(session, hold)) is not None:
        return done
    acc = store.lock_accounts(session, hold.account_id)[hold.account_id]
    hold = _hold(session, hold_id, lock=True)
    if (done := _release_replay(session, hold)) is not None:
        return done
    acc.held -= hold.amount
    hold.status = HoldStatus.RELEASED.value
    session.flush()
    _emit_hold(session, HoldReleased, hold, acc)
    return store.hold_result(hold, acc.code)


# ---- the ledger write -----------------------------------------------------------------------


def _post_entry(
    session: Session,
    *,
    transfer_id: str,
    kind: EntryKind,
    sender: Account,
    recipient: Account,
    amount: int,
    currency: str,
    description: str,
    reversal_of: tuple[uuid.UUID, str] | None = None,
    release_held: int = 0,
    actor: str | None = None,
) -> TransferResult | None:
    """Write the entry, its two postings and the new balances of the (already locked) user
    accounts, and emit ``wallet.transfer_posted``. ``None`` if ``transfer_id`` is already taken.
    ``reversal_of``: the reversed entry's id and transfer id.

    A system account keeps no running balance (its postings carry no ``balance_after``; its
    balance is their sum): its row is neither locked nor written, so the movements of unrelated
    users never queue behind it."""
    now = utcnow()
    postings = domain.transfer_postings(sender.code, recipient.code, amount)
    states = {sender.code: store.state_of(sender), recipient.code: store.state_of(recipient)}
    after = domain.apply_postings(states, postings, release=release_held)
    debit, credit = (
        store.NewPosting(
            account=account,
            amount=posting.amount,
            balance=after[account.code].balance if account.kind == AccountKind.USER else None,
            held=after[account.code].held if account.kind == AccountKind.USER else None,
        )
        for account, posting in zip((sender, recipient), postings, strict=True)
    )
    entry_id = store.post_entry(
        session,
        transfer_id=transfer_id,
        kind=kind.value,
        description=description,
        amount=amount,
        currency=currency,
        reversal_of=reversal_of[0] if reversal_of else None,
        created_at=now,
        postings=(debit, credit),
    )
    if entry_id is None:
        return None
    user = sender.owner_user_id or recipient.owner_user_id
    posted = TransferPosted(
        transfer_id=transfer_id,
        from_account=sender.code,
        to_account=recipient.code,
        amount=amount,
        currency=currency,
    )
    emit(session, posted, actor=actor or (str(user) if user else "system"))
    return TransferResult(
        transfer_id=transfer_id,
        entry_id=entry_id,
        kind=kind.value,
        from_account=sender.code,
        to_account=recipient.code,
        amount=amount,
        currency=currency,
        description=description,
        created_at=now,
        reversal_of=reversal_of[1] if reversal_of else None,
    )


# ---- helpers --------------------------------------------------------------------------------


def _account_id(session: Session, code: str) -> uuid.UUID:
    """The id of the account with this canonical code, or NotFound."""
    found = store.account_id(session, code)
    if found is None:
        raise _no_account(code)
    return found


def _no_account(code: str) -> NotFound:
    user = code.startswith(USER_ACCOUNT_PREFIX)
    return NotFound("wallet_not_found" if user else "account_not_found", f"no account {code}")


def _reversal_replay(session: Session, transfer_id: str, reversal_id: str) -> TransferResult | None:
    done = store.get_transfer(session, reversal_id, replayed=True)
    if done is None:
        return None
    if done.reversal_of != transfer_id:
        raise Conflict("transfer_id_conflict", f"{reversal_id} is already used")
    return done


def _hold(session: Session, hold_id: str, *, lock: bool = False) -> Hold:
    hold = store.hold_row(session, hold_id, lock=lock)
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
    done = store.get_transfer(session, transfer_id, replayed=True)
    assert done is not None, "a captured hold always has its entry"
    return done


def _release_replay(session: Session, hold: Hold) -> HoldResult | None:
    if hold.status == HoldStatus.OPEN:
        return None
    if hold.status == HoldStatus.CAPTURED:
        raise Refused(Reason.HOLD_ALREADY_CAPTURED)
    return store.get_hold(session, hold.hold_id, replayed=True)


def _emit_hold(session: Session, event: type[HoldEvent], hold: Hold, account: Account) -> None:
    owner = account.owner_user_id
    data = event(
        hold_id=hold.hold_id, account=account.code, amount=hold.amount, currency=hold.currency
    )
    emit(session, data, actor=str(owner) if owner else "system")
