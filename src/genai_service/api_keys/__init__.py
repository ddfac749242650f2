"""API keys: long-lived `gsk_...` bearer secrets, shown once, stored as digests, revocable."""
