"""Subscriptions: subscribe, cancel, renew, change plan, expiry, history, and entitlement."""
