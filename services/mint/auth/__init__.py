"""auth — identity: users, passwords, signed tokens, refresh-token families (services.md §1)."""
