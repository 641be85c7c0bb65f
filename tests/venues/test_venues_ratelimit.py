"""The shared limiter never lets a window exceed its safety cap, whatever the request mix."""

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from ate.venues.clock import ManualClock
from ate.venues.ratelimit import RateLimiter, Window


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 120), st.integers(0, 1), st.integers(0, 30_000)), min_size=1,
                max_size=200))
def test_windows_never_exceed_their_cap(requests):
    async def scenario():
        clock = ManualClock(1_700_000_040_000, auto_advance=True)
        lim = RateLimiter("v", clock, weight=[Window("1M", 600, 60_000)], orders=[Window("10S", 5, 10_000)])
        spent: dict[tuple[str, int], int] = {}
        for weight, orders, gap_ms in requests:
            clock._now += gap_ms
            await lim.acquire(weight, orders)
            now = clock.now_ms()
            for name, units, win in (("w", weight, 60_000), ("o", orders, 10_000)):
                key = (name, now - now % win)
                spent[key] = spent.get(key, 0) + units
        cap_w, cap_o = int(600 * 0.9), int(5 * 0.9)
        assert all(v <= (cap_w if k[0] == "w" else cap_o) for k, v in spent.items())

    asyncio.run(scenario())


async def test_pause_blocks_every_request_until_retry_after():
    clock = ManualClock(1_000_000, auto_advance=True)
    lim = RateLimiter("v", clock, weight=[Window("1M", 6000, 60_000)])
    lim.pause(7, "HTTP 429")
    await lim.acquire(1)
    assert clock.now_ms() >= 1_007_000 and lim.throttled_ms >= 7000


def test_header_reconciliation_only_raises_usage():
    clock = ManualClock(60_000)
    lim = RateLimiter("v", clock, weight=[Window("1M", 6000, 60_000)], orders=[Window("10S", 50, 10_000)])
    lim.observe_headers({"X-MBX-USED-WEIGHT-1M": "120", "x-mbx-order-count-10s": "7", "Other": "9"})
    lim.observe_headers({"X-MBX-USED-WEIGHT-1M": "100"})  # a stale answer never lowers the count
    assert lim.weight["1M"].used == 120 and lim.orders["10S"].used == 7
    assert round(lim.headroom()["weight_1M"], 2) == 0.98


async def test_pause_is_measured_on_the_pause_clock_not_the_replay_clock():
    replay = ManualClock(1_000_000, auto_advance=True)  # the engine's clock, racing ahead of the venue's
    wall = ManualClock(5_000_000)
    lim = RateLimiter("v", replay, weight=[Window("1M", 6000, 60_000)], pause_clock=wall)
    persisted = []
    lim.on_pause = lambda venue, until, why: persisted.append((venue, until, why))
    lim.pause(30, "HTTP 429")
    lim.pause(10, "HTTP 429")  # a shorter pause inside the first changes nothing
    assert persisted == [("v", 5_030_000, "HTTP 429")]
    waiter = asyncio.ensure_future(lim.acquire(1))
    await asyncio.sleep(0)  # the request starts waiting
    replay._now += 3_600_000  # an hour of replay: the venue's 30 s have not passed
    await wall.advance(29_000)
    assert not waiter.done() and lim.paused
    await wall.advance(1_000)
    await waiter
    assert not lim.paused and lim.throttled_ms == 30_000


def test_restore_adopts_a_persisted_pause_only_while_it_lasts():
    wall = ManualClock(5_000_000)
    lim = RateLimiter("v", wall, weight=[Window("1M", 6000, 60_000)])
    lim.restore(4_999_000, "HTTP 429")  # already over
    assert not lim.paused
    lim.restore(5_012_000, "HTTP 418")
    assert lim.paused and lim.pause_left_s() == 12 and lim.pause_reason == "HTTP 418"
