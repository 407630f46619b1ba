"""The nftables rules guarding model servers' loopback ports (pure parts)."""

from odh_spawner.host.portguard import OWNER_RULE, ROOT_ONLY_RULE, _elements, ruleset, table_name


def test_table_names_are_per_platform_and_nft_safe():
    assert table_name("1a2B3c4d") == "odh_1a2b3c4d"
    assert table_name("odh-hub-1a2b;drop") == "odh_odhhub1a2bdrop"


def test_ruleset_resets_non_root_connections_to_guarded_loopback_ports():
    rules = ruleset("odh_x")
    assert rules.startswith("table inet odh_x {")
    assert "set guarded { type inet_service; }" in rules
    assert "type filter hook output priority 0; policy accept;" in rules
    assert "add element inet odh_x admitted { 0 }" in rules
    assert ROOT_ONLY_RULE == "ip daddr 127.0.0.0/8 tcp dport @guarded meta skuid != @admitted reject with tcp reset"
    assert f"add rule inet odh_x output {ROOT_ONLY_RULE}" in rules


def test_ruleset_admits_owners_of_owner_guarded_ports():
    rules = ruleset("odh_x")
    assert "set owned_ports { type inet_service; }" in rules
    assert "set owners { type inet_service . uid; }" in rules
    assert OWNER_RULE == ("ip daddr 127.0.0.0/8 tcp dport @owned_ports meta skuid != @admitted "
                          "tcp dport . meta skuid != @owners reject with tcp reset")
    assert rules.index(ROOT_ONLY_RULE) < rules.index(OWNER_RULE)


def test_an_existing_tables_rules_are_replaced_and_the_services_user_only_ever_added():
    rules = ruleset("odh_x", allow_uids=(999, 0))
    assert "add element inet odh_x admitted { 0, 999 }" in rules
    assert rules.index("flush chain inet odh_x output") < rules.index("add rule")  # old rules go, sets stay
    assert "delete" not in rules and "flush set" not in rules


def test_set_elements_are_read_from_nft_json():
    listing = ('{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"set": {"family": "inet", "name": "owners", '
               '"type": ["inet_service", "uid"], "elem": [{"concat": [40001, 1001]}, {"concat": [40001, 0]}]}}]}')
    assert _elements(listing) == [[40001, 1001], [40001, 0]]
    assert _elements('{"nftables": [{"set": {"name": "guarded", "elem": [4000, 4001]}}]}') == [4000, 4001]
    assert _elements('{"nftables": [{"set": {"name": "guarded"}}]}') == []
