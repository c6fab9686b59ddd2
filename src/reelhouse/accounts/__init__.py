"""Accounts: users, registration, sign-in, tokens, profile and devices."""
