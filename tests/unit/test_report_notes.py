"""The report's notes on why each fault looks the way it does: every number in them is read from the config it
describes, so they cannot drift from it (they had: a 1 s connect timeout long after proxy.conf said 200 ms)."""

import re

import pytest

from loadtest.scoring import notes, saturation_report

TEMPLATES = [*notes.WHY.values(), *notes.ROLE_WHY.values(), notes.STORE_WHY, saturation_report.ABOUT]


def test_every_fact_is_found_in_todays_config():
    facts = notes.facts()
    assert set(facts) == set(notes.FACTS) and all(facts.values())


def test_the_facts_say_what_the_config_says_today():
    # Read by hand from the files each fact names; if one of these changes, so does the report's text.
    assert notes.facts() == {
        "connect_timeout": "200 ms", "read_timeout": "5 s", "retry_budget": "6 s",
        "passive": "max_fails=1, fail_timeout=5s", "graceful_timeout": "10 s", "stop_grace_period": "15 s",
        "redis_connect_timeout": "0.5 s", "store_retry_budget": "2 s", "down_after": "1 s", "quorum": "2",
        "cluster_node_timeout": "1 s"}


def test_no_note_writes_a_duration_by_hand():
    for template in TEMPLATES:
        assert not re.search(r"\b\d+(\.\d+)? ?(ms|s)\b(?<!503s)", template), template  # "503s": answers


@pytest.mark.parametrize("fault, target, store, says", [
    ("disconnect", "app2", "", "connections time out after 200 ms and nginx replays"),
    ("kill", "cluster-master", "cluster", "after cluster-node-timeout (1 s) the other masters"),
    ("kill", "redis", "redis", "after Redis' 0.5 s connect timeout"),
    ("kill", "sentinel-primary", "sentinel", "down after 1 s without answers (down-after), agree (quorum 2)"),
    ("stop", "app2", "", "(graceful_timeout 10 s, stop_grace_period 15 s)"),
])
def test_a_note_is_picked_by_target_then_store_then_fault_and_filled_in(fault, target, store, says):
    assert says in notes.why(fault, target, store)


def test_a_directive_that_is_gone_fails_loudly(tmp_path):
    (tmp_path / "loadbalancer").mkdir()
    (tmp_path / "loadbalancer" / "proxy.conf").write_text("proxy_read_timeout 5s;\n")
    assert notes.read(notes.FACTS["read_timeout"], tmp_path) == "5 s"
    with pytest.raises(LookupError, match="proxy_connect_timeout"):
        notes.read(notes.FACTS["connect_timeout"], tmp_path)


def test_durations_read_as_people_write_them():
    assert [notes._duration(notes._seconds(raw)) for raw in ("200ms", "5s", "1500ms", "0.5s")] == [
        "200 ms", "5 s", "1.5 s", "0.5 s"]
