"""The transaction engine (services.md §3)."""
