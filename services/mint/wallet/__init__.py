"""wallet — the double-entry ledger and balances (services.md §2)."""
