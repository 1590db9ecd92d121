"""The federation's status read from a server's log: a worker's error belongs to its subscription."""

from __future__ import annotations

from sifc.federation.status import SubscriptionStatus, _judge, worker_errors

LOG = """\
2026-12-05 15:17:17.006 UTC [18457] LOG:  logical replication apply worker for subscription "sifc_from_thies" has started
2026-12-05 15:17:17.010 UTC [18459] LOG:  logical replication table synchronization worker for subscription "sifc_from_dakar", table "commune" has started
2026-12-05 15:17:18.000 UTC [20001] postgres@sifc ERROR:  relation "nowhere" does not exist
2026-12-05 15:17:20.087 UTC [18457] ERROR:  could not send end-of-streaming message to primary: server closed the connection unexpectedly
2026-12-05 15:17:21.001 UTC [18459] ERROR:  duplicate key value violates unique constraint "pk_commune"
2026-12-05 15:17:25.500 UTC [18470] LOG:  logical replication apply worker for subscription "sifc_from_thies" has started
2026-12-05 15:17:25.600 UTC [18470] ERROR:  could not receive data from WAL stream: ERROR:  can no longer get changes from replication slot "sifc_to_national"
"""


def test_each_subscription_gets_the_last_error_of_its_own_workers():
    errors = worker_errors(LOG)
    assert set(errors) == {"sifc_from_thies", "sifc_from_dakar"}  # a session's error belongs to no subscription
    assert errors["sifc_from_thies"] == ("2026-12-05 15:17:25.600", "could not receive data from WAL stream: "
                                         "ERROR:  can no longer get changes from replication slot \"sifc_to_national\"")
    assert errors["sifc_from_dakar"][1].startswith("duplicate key value")


def _status(**values) -> SubscriptionStatus:
    base = dict(name="sifc_from_thies", peer="thies", enabled=True, publications=["sifc_pole"], worker_pid=None,
                tables={"r": 20}, received_lsn=None, latest_end_lsn=None, latest_end_time=None, last_contact_s=None,
                apply_error_count=0, sync_error_count=0, stats_reset=None)
    return SubscriptionStatus(**{**base, **values})


def test_the_state_and_the_command_that_repairs_it():
    cases = [
        (dict(worker_pid=42), "streaming", None),
        (dict(enabled=False), "disabled", "sifc node resume thies"),
        (dict(slot_wal_status="lost", enabled=False), "lost", "sifc node resync thies"),
        (dict(last_error="can no longer get changes from replication slot"), "lost", "sifc node resync thies"),
        (dict(publisher_reachable=False), "unreachable", None),
        (dict(worker_pid=42, tables={"r": 19, "d": 1}), "syncing", None),
        (dict(apply_error_count=3), "failing", "sifc node resync thies"),
        ({}, "starting", None),
    ]
    for values, state, action in cases:
        status = _status(**values)
        _judge(status)
        assert (status.state, status.action) == (state, action), values
