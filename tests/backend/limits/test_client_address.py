"""Whose word on the client's address is believed (backend.client_address)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.client_address import TrustedProxies, limit_key
from backend.errors import ConfigError

PROXY = TrustedProxies.parse(["10.0.0.0/8", "::1"])
FORWARDED = TrustedProxies.parse(["10.0.0.0/8"], "forwarded")

addresses = st.one_of(
    st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str), st.text(max_size=20)
)


def test_a_peer_that_is_not_a_trusted_proxy_is_the_client_whatever_it_says() -> None:
    assert PROXY.client("203.0.113.7", ["198.51.100.1"]) == "203.0.113.7"


def test_a_trusted_proxy_names_the_client_in_the_entry_it_added() -> None:
    assert PROXY.client("10.0.0.2", ["198.51.100.1"]) == "198.51.100.1"


def test_entries_a_client_sent_before_the_proxy_appended_are_not_believed() -> None:
    # The client sent "X-Forwarded-For: 1.1.1.1"; the proxy appended what it saw.
    assert PROXY.client("10.0.0.2", ["1.1.1.1, 198.51.100.1"]) == "198.51.100.1"


def test_a_chain_of_trusted_proxies_is_walked_to_the_first_stranger() -> None:
    assert PROXY.client("10.0.0.2", ["1.1.1.1, 198.51.100.1, 10.9.9.9"]) == "198.51.100.1"


def test_several_header_lines_are_one_list_in_order() -> None:
    assert PROXY.client("10.0.0.2", ["1.1.1.1", "198.51.100.1"]) == "198.51.100.1"


def test_an_unknown_hop_leaves_the_connection_to_the_last_known_proxy() -> None:
    assert PROXY.client("10.0.0.2", ["198.51.100.1, unknown"]) == "10.0.0.2"


def test_no_header_from_a_trusted_proxy_is_the_proxy_itself() -> None:
    assert PROXY.client("10.0.0.2", []) == "10.0.0.2"


@pytest.mark.parametrize(
    ("entry", "client"),
    [
        ("198.51.100.1:4711", "198.51.100.1"),
        ("[2001:db8::1]:4711", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("::ffff:198.51.100.1", "198.51.100.1"),
    ],
)
def test_ports_brackets_and_mapped_addresses_are_understood(entry: str, client: str) -> None:
    assert PROXY.client("::1", [entry]) == client


def test_forwarded_header_for_parameters_are_read() -> None:
    values = ['for=1.1.1.1, for="[2001:db8::7]:80";proto=https;by=10.0.0.2']
    assert FORWARDED.client("10.0.0.2", values) == "2001:db8::7"


def test_only_the_configured_header_counts() -> None:
    """A proxy that appends X-Forwarded-For passes a client's own Forwarded through."""
    assert PROXY.client("10.0.0.2", []) == "10.0.0.2"
    assert FORWARDED.client("10.0.0.2", []) == "10.0.0.2"


def test_bad_configuration_is_refused_with_the_value() -> None:
    with pytest.raises(ConfigError, match=r"proxy\.example"):
        TrustedProxies.parse(["proxy.example"])
    with pytest.raises(ConfigError, match="x-real-ip"):
        TrustedProxies.parse(["10.0.0.0/8"], "x-real-ip")


def test_ipv6_clients_are_limited_by_their_64() -> None:
    assert limit_key("2001:db8:1:2:3:4:5:6") == limit_key("2001:db8:1:2:ffff::1")
    assert limit_key("2001:db8:1:2::1") != limit_key("2001:db8:1:3::1")
    assert limit_key("198.51.100.1") == "198.51.100.1"


@given(peer=st.ip_addresses(), values=st.lists(st.lists(addresses).map(", ".join)))
def test_an_untrusted_peer_cannot_choose_its_address(
    peer: ipaddress.IPv4Address | ipaddress.IPv6Address, values: list[str]
) -> None:
    if PROXY.trusts(peer):
        return
    mapped = peer.ipv4_mapped if isinstance(peer, ipaddress.IPv6Address) else None
    expected = str(mapped or peer)
    assert PROXY.client(str(peer), values) == expected


@given(
    client=st.ip_addresses(v=4).filter(lambda a: not PROXY.trusts(a)),
    sent=st.lists(addresses),
)
def test_whatever_a_client_puts_in_front_the_proxy_entry_wins(
    client: ipaddress.IPv4Address, sent: list[str]
) -> None:
    header = ", ".join([*sent, str(client)])
    assert PROXY.client("10.1.2.3", [header]) == str(client)
