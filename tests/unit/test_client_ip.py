"""Which address a request counts against: the peer, or the client a trusted proxy reports."""

from __future__ import annotations

from ipaddress import ip_network
from typing import Any

import pytest

from reelhouse.platform.client_ip import UNVERIFIED_CLIENT, client_ip
from reelhouse.platform.ratelimit import caller_network

PROXIES = [ip_network("10.0.0.0/8"), ip_network("fd00::/8")]


def scope(peer: str | None, *forwarded_for: str) -> Any:
    return {
        "type": "http",
        "client": (peer, 50000) if peer is not None else None,
        "headers": [(b"x-forwarded-for", value.encode("latin-1")) for value in forwarded_for],
    }


class TestWithoutTrustedProxies:
    def test_the_peer_is_the_client(self):
        assert client_ip(scope("203.0.113.7"), []) == "203.0.113.7"

    def test_forwarded_for_is_ignored(self):
        assert client_ip(scope("203.0.113.7", "198.51.100.1"), []) == "203.0.113.7"

    def test_a_peer_that_is_not_an_address_is_used_as_it_is(self):
        assert client_ip(scope("testclient", "198.51.100.1"), PROXIES) == "testclient"

    def test_no_peer_at_all(self):
        assert client_ip(scope(None), PROXIES) == "unknown"


class TestFromAnUntrustedPeer:
    def test_forwarded_for_is_ignored(self):
        assert client_ip(scope("203.0.113.7", "198.51.100.1"), PROXIES) == "203.0.113.7"


class TestFromATrustedProxy:
    def test_the_forwarded_address_is_the_client(self):
        assert client_ip(scope("10.0.0.2", "198.51.100.1"), PROXIES) == "198.51.100.1"

    def test_the_rightmost_untrusted_hop_wins_over_what_the_client_wrote(self):
        # The client sent "X-Forwarded-For: 1.1.1.1"; our two proxies appended what they saw.
        assert client_ip(scope("10.0.0.2", "1.1.1.1, 198.51.100.1, 10.0.0.9"), PROXIES) == "198.51.100.1"

    def test_several_header_lines_are_read_as_one_list_in_order(self):
        assert client_ip(scope("10.0.0.2", "1.1.1.1", "198.51.100.1, 10.0.0.9"), PROXIES) == "198.51.100.1"

    def test_when_every_hop_is_a_proxy_the_farthest_one_is_the_client(self):
        assert client_ip(scope("10.0.0.2", "10.0.0.5, 10.0.0.9"), PROXIES) == "10.0.0.5"

    def test_without_the_header_the_proxy_itself_is_the_client(self):
        assert client_ip(scope("10.0.0.2"), PROXIES) == "10.0.0.2"

    def test_ipv6_hops_are_understood(self):
        assert client_ip(scope("fd00::1", "2001:db8::7, fd00::2"), PROXIES) == "2001:db8::7"

    def test_addresses_are_written_in_one_canonical_form(self):
        assert client_ip(scope("10.0.0.2", "2001:DB8:0:0::7"), PROXIES) == "2001:db8::7"

    @pytest.mark.parametrize(
        ("hop", "expected"),
        [("198.51.100.1:4711", "198.51.100.1"), ("[2001:db8::7]:443", "2001:db8::7"), ("[2001:db8::7]", "2001:db8::7")],
    )
    def test_a_port_after_the_address_is_dropped(self, hop: str, expected: str):
        assert client_ip(scope("10.0.0.2", hop), PROXIES) == expected

    def test_an_ipv4_mapped_peer_is_matched_against_ipv4_proxies(self):
        assert client_ip(scope("::ffff:10.0.0.2", "198.51.100.1"), PROXIES) == "198.51.100.1"


class TestGarbage:
    @pytest.mark.parametrize(
        "forwarded",
        ["unknown", "not-an-ip", "198.51.100.1\x00", "999.1.1.1", "1.1.1.1, <script>", "[2001:db8::7", "", " , ,"],
    )
    def test_a_hop_that_is_not_an_address_falls_back_to_the_peer(self, forwarded: str):
        assert client_ip(scope("10.0.0.2", forwarded), PROXIES) == "10.0.0.2"

    def test_garbage_left_of_the_client_is_never_reached(self):
        assert client_ip(scope("10.0.0.2", "garbage, 198.51.100.1"), PROXIES) == "198.51.100.1"


class TestCallerNetwork:
    @pytest.mark.parametrize(
        ("ip", "counted_as"),
        [
            ("198.51.100.7", "198.51.100.7"),
            ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
            ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
            ("testclient", "testclient"),
        ],
    )
    def test_ipv4_callers_count_alone_and_ipv6_callers_by_their_slash_64(self, ip: str, counted_as: str):
        assert caller_network(ip) == counted_as


class TestAnAddressTheServerTookFromTheHeader:
    """uvicorn's proxy-header support replaces the peer with a forwarded hop before the app sees it."""

    def test_a_peer_that_is_one_of_the_forwarded_hops_is_unverified(self):
        assert client_ip(scope("198.51.100.1", "198.51.100.1"), []) == UNVERIFIED_CLIENT
        assert client_ip(scope("198.51.100.1", "10.1.1.1, 198.51.100.1"), PROXIES) == UNVERIFIED_CLIENT

    def test_every_forged_address_lands_in_the_same_bucket(self):
        keys = {caller_network(client_ip(scope(f"198.51.100.{n}", f"198.51.100.{n}"), [])) for n in range(1, 50)}
        assert len(keys) == 1

    def test_a_real_peer_with_a_forwarded_header_is_still_itself(self):
        assert client_ip(scope("203.0.113.7", "198.51.100.1"), []) == "203.0.113.7"
