"""The RevocationStore contract: Redis and in-memory stores agree on what is revoked and for how long."""

from __future__ import annotations

import asyncio

from reelhouse.platform.revocation import RevocationStore

TTL = 900


class TestRevokedTokens:
    async def test_a_revoked_token_is_revoked_and_its_siblings_are_not(self, revocations: RevocationStore):
        await revocations.revoke_token("u1", "jti-1", TTL)

        assert await revocations.is_revoked("u1", "jti-1", "family-1")
        assert not await revocations.is_revoked("u1", "jti-2", "family-1")

    async def test_nothing_is_revoked_at_first(self, revocations: RevocationStore):
        assert not await revocations.is_revoked("u1", "jti-1", "family-1")


class TestRevokedFamilies:
    async def test_every_token_of_a_revoked_family_is_revoked(self, revocations: RevocationStore):
        await revocations.revoke_family("u1", "family-1", TTL)

        assert await revocations.is_revoked("u1", "jti-1", "family-1")
        assert await revocations.is_revoked("u1", "jti-2", "family-1")
        assert not await revocations.is_revoked("u1", "jti-1", "family-2")


class TestIsolation:
    async def test_revocations_belong_to_one_user(self, revocations: RevocationStore):
        await revocations.revoke_token("u1", "jti-1", TTL)
        await revocations.revoke_family("u1", "family-1", TTL)

        assert not await revocations.is_revoked("u2", "jti-1", "family-1")

    async def test_a_family_id_is_not_mistaken_for_a_token_id(self, revocations: RevocationStore):
        await revocations.revoke_family("u1", "same-id", TTL)

        assert not await revocations.is_revoked("u1", "same-id", "family-1")


class TestExpiry:
    async def test_entries_expire_after_their_ttl_unless_revoked_again_for_longer(self, revocations: RevocationStore):
        await revocations.revoke_token("u1", "jti-1", 1)
        await revocations.revoke_family("u1", "family-1", 1)
        await revocations.revoke_token("u1", "jti-2", 1)
        await revocations.revoke_token("u1", "jti-2", TTL)
        assert await revocations.is_revoked("u1", "jti-1", "family-x")
        assert await revocations.is_revoked("u1", "jti-x", "family-1")

        await asyncio.sleep(1.1)

        assert not await revocations.is_revoked("u1", "jti-1", "family-x")
        assert not await revocations.is_revoked("u1", "jti-x", "family-1")
        assert await revocations.is_revoked("u1", "jti-2", "family-x")
