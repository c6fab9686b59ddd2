"""The RevocationStore contract: Redis and in-memory stores agree on what is revoked and for how long."""

from __future__ import annotations

import asyncio

from reelhouse.platform.revocation import REVOKED, RevocationStore, StandingCheck, TokenStanding

TTL = 900


class TestRevokedTokens:
    async def test_a_revoked_token_is_revoked_and_its_siblings_are_not(self, revocations: RevocationStore):
        await revocations.revoke_token("u1", "jti-1", TTL)

        assert (await revocations.standing("u1", "jti-1", "family-1", 1)).revoked
        assert not (await revocations.standing("u1", "jti-2", "family-1", 1)).revoked

    async def test_nothing_is_revoked_at_first(self, revocations: RevocationStore):
        assert not (await revocations.standing("u1", "jti-1", "family-1", 1)).revoked


class TestRevokedFamilies:
    async def test_every_token_of_a_revoked_family_is_revoked(self, revocations: RevocationStore):
        await revocations.revoke_family("u1", "family-1", TTL)

        assert (await revocations.standing("u1", "jti-1", "family-1", 1)).revoked
        assert (await revocations.standing("u1", "jti-2", "family-1", 1)).revoked
        assert not (await revocations.standing("u1", "jti-1", "family-2", 1)).revoked


class TestIsolation:
    async def test_revocations_belong_to_one_user(self, revocations: RevocationStore):
        await revocations.revoke_token("u1", "jti-1", TTL)
        await revocations.revoke_family("u1", "family-1", TTL)

        assert not (await revocations.standing("u2", "jti-1", "family-1", 1)).revoked

    async def test_a_family_id_is_not_mistaken_for_a_token_id(self, revocations: RevocationStore):
        await revocations.revoke_family("u1", "same-id", TTL)

        assert not (await revocations.standing("u1", "same-id", "family-1", 1)).revoked


class TestExpiry:
    async def test_entries_expire_after_their_ttl_unless_revoked_again_for_longer(self, revocations: RevocationStore):
        await revocations.revoke_token("u1", "jti-1", 1)
        await revocations.revoke_family("u1", "family-1", 1)
        await revocations.revoke_token("u1", "jti-2", 1)
        await revocations.revoke_token("u1", "jti-2", TTL)
        assert (await revocations.standing("u1", "jti-1", "family-x", 1)).revoked
        assert (await revocations.standing("u1", "jti-x", "family-1", 1)).revoked

        await asyncio.sleep(1.1)

        assert not (await revocations.standing("u1", "jti-1", "family-x", 1)).revoked
        assert not (await revocations.standing("u1", "jti-x", "family-1", 1)).revoked
        assert (await revocations.standing("u1", "jti-2", "family-x", 1)).revoked


class TestVersionFloor:
    async def test_tokens_below_the_floor_are_revoked_and_later_ones_are_not(self, revocations: RevocationStore):
        await revocations.revoke_versions_below("u1", 3, TTL)

        assert (await revocations.standing("u1", "jti-1", "family-1", 2)).revoked
        assert not (await revocations.standing("u1", "jti-1", "family-1", 3)).revoked
        assert not (await revocations.standing("u2", "jti-1", "family-1", 0)).revoked

    async def test_a_raised_floor_replaces_the_old_one(self, revocations: RevocationStore):
        await revocations.revoke_versions_below("u1", 1, TTL)
        await revocations.revoke_versions_below("u1", 2, TTL)

        assert (await revocations.standing("u1", "jti-1", "family-1", 1)).revoked

    async def test_the_floor_expires_with_the_tokens_it_refuses(self, revocations: RevocationStore):
        await revocations.revoke_versions_below("u1", 5, 1)
        await asyncio.sleep(1.1)

        assert not (await revocations.standing("u1", "jti-1", "family-1", 0)).revoked


class TestAdminOverride:
    async def test_no_override_leaves_the_tokens_claim(self, revocations: RevocationStore):
        assert await revocations.standing("u1", "jti-1", "family-1", 0) == TokenStanding(revoked=False)

    async def test_granted_and_taken_away(self, revocations: RevocationStore):
        await revocations.override_admin("u1", True, TTL)
        assert (await revocations.standing("u1", "jti-1", "family-1", 0)).admin_override is True

        await revocations.override_admin("u1", False, TTL)
        standing = await revocations.standing("u1", "jti-1", "family-1", 0)
        assert standing == TokenStanding(revoked=False, admin_override=False)
        assert (await revocations.standing("u2", "jti-1", "family-1", 0)).admin_override is None

    async def test_a_revoked_token_stays_revoked_whatever_the_override(self, revocations: RevocationStore):
        await revocations.override_admin("u1", True, TTL)
        await revocations.revoke_token("u1", "jti-1", TTL)

        assert (await revocations.standing("u1", "jti-1", "family-1", 0)).revoked


class TestProfileVersion:
    async def test_each_bump_changes_the_version_of_that_user_only(self, revocations: RevocationStore):
        assert (await revocations.standing("u1", "jti-1", "family-1", 0)).profile_version == 0
        await revocations.bump_profile_version("u1")
        first = (await revocations.standing("u1", "jti-1", "family-1", 0)).profile_version
        await revocations.bump_profile_version("u1")
        second = (await revocations.standing("u1", "jti-1", "family-1", 0)).profile_version

        assert 0 != first != second
        assert (await revocations.standing("u2", "jti-1", "family-1", 0)).profile_version == 0


class TestManyStandingsAtOnce:
    async def test_each_check_of_a_batch_gets_the_standing_it_would_get_alone(self, revocations: RevocationStore):
        await revocations.revoke_token("u1", "jti-1", TTL)
        await revocations.revoke_family("u2", "family-2", TTL)
        await revocations.revoke_versions_below("u3", 5, TTL)
        await revocations.override_admin("u4", True, TTL)
        await revocations.bump_profile_version("u5")
        checks = [
            StandingCheck("u1", "jti-1", "family-1", 1),
            StandingCheck("u1", "jti-2", "family-1", 1),
            StandingCheck("u2", "jti-9", "family-2", 1),
            StandingCheck("u3", "jti-3", "family-3", 4),
            StandingCheck("u3", "jti-3", "family-3", 5),
            StandingCheck("u4", "jti-4", "family-4", 1),
            StandingCheck("u5", "jti-5", "family-5", 1),
        ]

        together = await revocations.standings(checks)
        alone = [await revocations.standing(c.user_id, c.jti, c.family_id, c.version) for c in checks]

        assert together == alone
        assert [standing.revoked for standing in together] == [True, False, True, True, False, False, False]
        assert together[5].admin_override is True
        assert together[6].profile_version == 1

    async def test_a_batch_of_one_and_an_empty_batch(self, revocations: RevocationStore):
        await revocations.revoke_token("u1", "jti-1", TTL)

        assert await revocations.standings([StandingCheck("u1", "jti-1", "family-1", 1)]) == [REVOKED]
        assert await revocations.standings([]) == []
