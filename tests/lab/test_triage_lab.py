"""giga-netcheck's verdict in every lab scenario: the top claim is the scenario's cause, in its
segment; `healthy` claims nothing. One `run --quick` per scenario inside the client namespace
(a full run, with the load ramp, where the cause needs it)."""

from __future__ import annotations

import pytest

from tests.lab.scenarios import load_scenarios
from tests.lab.triage_run import diagnose

pytestmark = pytest.mark.lab

FULL_RUN = {
    # a session table shows only with many concurrent connections: the load ramp brings them,
    # and --quick skips the ramp to keep its 20 s promise
    "session-limit",
}


@pytest.mark.parametrize("lab", list(load_scenarios()), indirect=True)
def test_top_claim_is_the_scenario_cause(lab):
    v = diagnose(lab, quick=lab.scenario.name not in FULL_RUN)
    assert v.correct, (
        f"{v.scenario}: expected {v.expected or 'no claim'} [{v.expected_segment}], got {v.claims or 'no claim'} (status {v.status})"
    )
    if v.expected is None:
        assert v.status in ("pass", "warn") and v.exit_code == 0
    else:
        assert v.status == "fail" and v.exit_code == 1
