"""kyc — identity verification, documents, tiers and limits (services.md §5)."""
