"""The traffic lab's window over its samples: which requests belong to one weight setting."""

from deploy.traffic.lab import ClientLoop, Sample


def _loop(*samples: Sample) -> ClientLoop:
    return ClientLoop(url="http://127.0.0.1:1", samples=list(samples))


def test_a_request_still_in_flight_when_the_window_ends_is_not_in_it() -> None:
    """Sent just before the next weight change but answered after it: HAProxy may have routed it under either
    setting (the client's send time is not when HAProxy picked the server), so it belongs to neither window."""
    loop = _loop(Sample(sent=1.0, done=1.2, colour="green"),
                 Sample(sent=1.9, done=2.1, colour="blue"),
                 Sample(sent=2.2, done=2.3, colour="blue"))
    assert loop.colours(since=1.0, until=2.0) == {"green": 1}
    assert loop.colours(since=2.0) == {"blue": 1}
    assert [s.colour for s in loop.answered(since=1.0, until=2.0)] == ["green"]


def test_failures_count_by_send_time() -> None:
    """A failure is the request's, whenever its answer (or error) came: the bench counts them by send time."""
    loop = _loop(Sample(sent=1.9, done=2.1, colour=None, error="HTTP 503"))
    assert len(loop.failures(since=1.0, until=2.0)) == 1
