"""A real engine process for the crash tests: `python engine_driver.py CONFIG START_MS T0 SPEED READY_FD`.

The engine's clock is the simulator's replay clock, computed from the wall clock the same way in both
processes (START_MS at wall time T0, SPEED× real time), so signatures and book ages agree across the two.
Writes "ready" to READY_FD (its own pipe: no log line can get in front of it) once started; SIGTERM stops it
gracefully, SIGKILL is what the tests use.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from ate.config import parse_config
from ate.engine import Engine


class SharedReplayClock:
    def __init__(self, start_ms: int, t0: float, speed: float) -> None:
        self.start_ms, self.t0, self.speed = start_ms, t0, speed

    def now_ms(self) -> int:
        return self.start_ms + int((time.time() - self.t0) * self.speed * 1000)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed)


async def main(path: str, start_ms: int, t0: float, speed: float, ready_fd: int) -> None:
    with open(path) as f:
        cfg = parse_config(json.load(f))
    engine = Engine(cfg, clock=SharedReplayClock(start_ms, t0, speed))
    await engine.start()
    os.write(ready_fd, b"ready\n")
    os.close(ready_fd)
    try:
        await engine.run_until_stopped()
    finally:
        await engine.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])))
