"""The nftables rules guarding model servers' loopback ports (pure parts)."""

from odh_spawner.host.portguard import ruleset, table_name


def test_table_names_are_per_platform_and_nft_safe():
    assert table_name("1a2B3c4d") == "odh_1a2b3c4d"
    assert table_name("odh-hub-1a2b;drop") == "odh_odhhub1a2bdrop"


def test_ruleset_resets_non_root_connections_to_guarded_loopback_ports():
    rules = ruleset("odh_x")
    assert rules.startswith("table inet odh_x {")
    assert "set guarded { type inet_service; }" in rules
    assert "type filter hook output priority 0; policy accept;" in rules
    assert "ip daddr 127.0.0.0/8 tcp dport @guarded meta skuid != { 0 } reject with tcp reset" in rules
    assert "flush chain inet odh_x output" in rules  # an existing table's rule is replaced, its ports kept


def test_the_platform_services_own_user_may_connect_too():
    rules = ruleset("odh_x", allow_uids=(999, 0))
    assert "meta skuid != { 0, 999 } reject with tcp reset" in rules
