"""The Games Server allowlist the billing checks before anything else (wallet.money.allowlist)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from wallet.money.allowlist import SourceAllowlist, parse_networks
from wallet.settings import Settings

PROVIDER = SourceAllowlist(parse_networks("198.51.100.7/32, 203.0.113.0/24,2001:db8:1::/48"))


@pytest.mark.parametrize(
    ("address", "admitted"),
    [
        ("198.51.100.7", True),
        ("198.51.100.8", False),
        ("203.0.113.0", True),
        ("203.0.113.255", True),
        ("203.0.114.0", False),
        ("2001:db8:1::42", True),
        ("2001:db8:2::42", False),
        ("::ffff:198.51.100.7", True),  # IPv4-mapped
        ("::ffff:198.51.100.8", False),
        ("198.51.100.7:443", False),  # not an address: refused, never parsed leniently
        ("", False),
        (None, False),
        ("localhost", False),
    ],
)
def test_admits_only_the_listed_networks(address: str | None, admitted: bool) -> None:
    assert PROVIDER.admits(address) is admitted


def test_nobody_is_admitted_by_an_empty_list() -> None:
    assert parse_networks("") == parse_networks(" , ") == ()
    assert not SourceAllowlist(()).admits("198.51.100.7")


def test_a_cidr_with_host_bits_means_its_network() -> None:
    assert parse_networks("198.51.100.7/24") == (ipaddress.ip_network("198.51.100.0/24"),)


@pytest.mark.parametrize("text", ["198.51.100.300/32", "198.51.100.7/33", "example.com", "198.51.100.7/32;10.0.0.0/8"])
def test_a_bad_entry_is_refused_by_name(text: str) -> None:
    with pytest.raises(ValueError, match="is not an IPv4 or IPv6 CIDR"):
        parse_networks(text)
    with pytest.raises(ValidationError):
        Settings.from_env({"WALLET_TABLE": "wallet", "WALLET_GAMES_SERVER_CIDRS": text})


def test_the_setting_comes_from_the_environment() -> None:
    settings = Settings.from_env({"WALLET_TABLE": "wallet", "WALLET_GAMES_SERVER_CIDRS": "198.51.100.7/32"})
    assert settings.games_server_cidrs == (ipaddress.ip_network("198.51.100.7/32"),)
    assert Settings.from_env({"WALLET_TABLE": "wallet"}).games_server_cidrs == ()


@given(st.ip_addresses(v=4), st.integers(min_value=0, max_value=32))
def test_agrees_with_ipaddress_on_any_v4_network(address: ipaddress.IPv4Address, prefix: int) -> None:
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    allowlist = SourceAllowlist([network])
    assert allowlist.admits(str(address))
    outside = int(network.broadcast_address) + 1
    if outside < 2**32:
        assert not allowlist.admits(str(ipaddress.IPv4Address(outside)))
