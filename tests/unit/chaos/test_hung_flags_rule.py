"""`make chaos`'s "SIGSTOP flags" fault: an observer streaming from the hung instance cannot see a kill before
HAProxy takes that instance out, so its 2 s deadline counts from then at the latest (`hung_until`), and the
kill itself may take that long to be accepted; every other fault keeps its rule."""

from __future__ import annotations

from chaos.faults import FAULTS, FLAGS_MARKED_DOWN_S
from chaos.phase import KILL_DEADLINE_S, Phase
from chaos.result import FaultResult


def _result(phase: Phase, *, started: float, grace: float, hung_until: float | None) -> FaultResult:
    fault = next(f for f in FAULTS if f.slug == "flags-sigstop")
    return FaultResult.of(fault=fault, phase=phase, seconds=30, started=started, restored=started + 30, back=30,
                          healthy_at=started + 31, kill_grace_s=grace, unhealthy=[], triggers=[], produced=1,
                          produced_requests=1, sdk_dropped=0, in_topic=1, duplicates=0, topic_requests=1,
                          sla_requests=1, sla_settle_s=0, hung_until=hung_until)


def _phase(started: float, *, accepted_after: float, last_on_after: float) -> Phase:
    phase = Phase("flags-sigstop", "svc", started=started)
    phase.kill_at = started + 1.0
    phase.kill_ok_at = phase.kill_at + accepted_after
    phase.kill_codes = ["200"]
    phase.observers = {"sdk0", "sdk1"}
    phase.seen = {"sdk0": phase.kill_at + last_on_after + 0.1, "sdk1": phase.kill_at + 0.01}
    phase.last_on = {"sdk0": phase.kill_at + last_on_after}
    return phase


def test_the_fault_is_known_and_what_faults_pause_is_resumed_at_the_end() -> None:
    fault = next(f for f in FAULTS if f.slug == "flags-sigstop")
    assert (fault.action, fault.program, fault.timed) == ("pause", "flags", True)
    assert FLAGS_MARKED_DOWN_S == 3.25
    assert {f.program for f in FAULTS if f.action == "pause"} == {"kafka", "flags", "sla"}  # Runner._restore resumes these


def test_an_observer_on_the_hung_instance_counts_from_when_haproxy_took_it_out() -> None:
    t0 = 1_000.0
    # the kill went to the healthy instance at once; sdk0 streamed from the hung one and saw it 3.4 s after
    # the kill (4.4 s after the hang): within 2 s of the 3.25 s HAProxy needs, so not stale
    phase = _phase(t0, accepted_after=0.0, last_on_after=3.3)
    ok = _result(phase, started=t0, grace=FLAGS_MARKED_DOWN_S, hung_until=t0 + FLAGS_MARKED_DOWN_S)
    assert ok.stale == {} and not ok.missed()
    # without the rule (a kill sent to a healthy stack) the same observer is 3.3 s late
    strict = _result(phase, started=t0, grace=0.0, hung_until=None)
    assert strict.stale == {"sdk0": 3.3}
    # and past the hung instance's 3.25 s + 2 s it is stale again
    late = _phase(t0, accepted_after=0.0, last_on_after=FLAGS_MARKED_DOWN_S + KILL_DEADLINE_S)
    assert _result(late, started=t0, grace=FLAGS_MARKED_DOWN_S, hung_until=t0 + FLAGS_MARKED_DOWN_S).stale


def test_the_kill_may_wait_for_haproxy_but_not_longer() -> None:
    t0 = 1_000.0
    on_time = _phase(t0, accepted_after=FLAGS_MARKED_DOWN_S + KILL_DEADLINE_S - 0.1, last_on_after=0.0)
    assert _result(on_time, started=t0, grace=FLAGS_MARKED_DOWN_S, hung_until=t0 + FLAGS_MARKED_DOWN_S).kill_in_time
    late = _phase(t0, accepted_after=FLAGS_MARKED_DOWN_S + KILL_DEADLINE_S + 0.1, last_on_after=0.0)
    assert not _result(late, started=t0, grace=FLAGS_MARKED_DOWN_S, hung_until=t0 + FLAGS_MARKED_DOWN_S).kill_in_time
