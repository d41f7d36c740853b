"""``wallet.events`` (producer: wallet) — events.md "wallet".

``transfer_id`` and ``hold_id`` are the ids the wallet's callers chose (1..255 printable
characters; the transactions service uses the transaction id), so they are strings."""

from typing import ClassVar
from uuid import UUID

from mint.contracts import money
from mint.contracts.base import AccountCode, Amount, ClientId, Currency, EventContract


class WalletEvent(EventContract):
    TOPIC: ClassVar[str] = "wallet.events"
    SOURCE: ClassVar[str] = "wallet"


class WalletCreated(WalletEvent):
    TYPE: ClassVar[str] = "wallet.created"
    SUBJECT_FIELD: ClassVar[str] = "wallet_id"

    wallet_id: UUID
    user_id: UUID
    currency: Currency


class WalletStatusChanged(WalletEvent):
    SUBJECT_FIELD: ClassVar[str] = "wallet_id"

    wallet_id: UUID
    user_id: UUID


class WalletFrozen(WalletStatusChanged):
    TYPE: ClassVar[str] = "wallet.frozen"


class WalletUnfrozen(WalletStatusChanged):
    TYPE: ClassVar[str] = "wallet.unfrozen"


class TransferPosted(WalletEvent):
    """Keyed by the user of the first user account (from, then to); the transfer id when both
    are system accounts."""

    TYPE: ClassVar[str] = "wallet.transfer_posted"
    SUBJECT_FIELD: ClassVar[str] = "transfer_id"

    transfer_id: ClientId
    from_account: AccountCode
    to_account: AccountCode
    amount: Amount
    currency: Currency

    def key(self) -> str:
        for code in (self.from_account, self.to_account):
            user = money.user_of_account(code)
            if user is not None:
                return str(user)
        return self.subject()


class HoldEvent(WalletEvent):
    """Keyed by the user owning ``account``; the hold id for a system account."""

    SUBJECT_FIELD: ClassVar[str] = "hold_id"

    hold_id: ClientId
    account: AccountCode
    amount: Amount
    currency: Currency

    def key(self) -> str:
        user = money.user_of_account(self.account)
        return self.subject() if user is None else str(user)


class HoldPlaced(HoldEvent):
    TYPE: ClassVar[str] = "wallet.hold_placed"


class HoldCaptured(HoldEvent):
    TYPE: ClassVar[str] = "wallet.hold_captured"


class HoldReleased(HoldEvent):
    TYPE: ClassVar[str] = "wallet.hold_released"
