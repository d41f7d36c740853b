"""web: the user app (services.md §12) — server-rendered pages over the public APIs."""
