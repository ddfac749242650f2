"""Accounts: registration, the caller's profile and password, and user administration."""
