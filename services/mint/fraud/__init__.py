"""fraud — scoring every money movement, review cases and the sanctions list (services.md §4)."""
