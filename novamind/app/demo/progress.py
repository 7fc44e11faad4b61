"""Progress while the demo runs: one line per day fed, then the lag countdown.

On a terminal the line is rewritten in place; otherwise (logs, CI) a line every ten days.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from novamind.app.demo.exceptions import DemoError
from novamind.app.demo.feed import Feed, LagProbe
from novamind.app.demo.plan import DIRECT, FHIR, FITBIT, INTAKE, OPENMHEALTH, Round
from novamind.app.demo.processes import Service, check_alive
from novamind.platform.settings import Settings
from schemas.topics import SOURCE_TOPICS, TopicName

CATCH_UP_TIMEOUT_S = 600.0


def day_line(n: int, total: int, r: Round, feed: Feed, elapsed_s: float) -> str:
    produced = feed.totals.produced
    return (
        f"  day {n:>{len(str(total))}}/{total} {r.date}: "
        f"{produced[FITBIT] + produced[OPENMHEALTH]:,} wearable samples, {produced[INTAKE]:,} reports, "
        f"{produced[FHIR]:,} EHR records, {produced[DIRECT]:,} direct; {elapsed_s:.0f}s"
    )


def feed_rounds(feed: Feed, rounds: Sequence[Round]) -> None:
    tty = sys.stdout.isatty()
    started = time.monotonic()
    for n, r in enumerate(rounds, start=1):
        feed.run_round(r)
        line = day_line(n, len(rounds), r, feed, time.monotonic() - started)
        if tty:
            print(f"\r{line}", end="", flush=True)
        elif n % 10 == 0 or n == len(rounds):
            print(line, flush=True)
    if tty:
        print()
    print(f"  of which {feed.totals.waited_s:.0f}s waiting for the workers between days")


def catch_up(settings: Settings, group: str, services: Sequence[Service]) -> None:
    """Until the group has no lag on the source topics and twin inputs, three polls in a row."""
    topics = [settings.kafka.topic(t) for t in (*SOURCE_TOPICS, TopicName.TWIN_INPUTS)]
    probe = LagProbe(settings.kafka, group, topics)
    tty = sys.stdout.isatty()
    started = time.monotonic()
    quiet = 0
    try:
        while quiet < 3:
            check_alive(services)
            if time.monotonic() - started > CATCH_UP_TIMEOUT_S:
                raise DemoError(f"the workers did not catch up within {CATCH_UP_TIMEOUT_S:.0f}s")
            lag = probe.lag()
            if tty:
                left = "?" if lag is None else f"{lag:,}"
                print(f"\r  records still to process: {left:>9}", end="", flush=True)
            quiet = quiet + 1 if lag == 0 else 0
            time.sleep(1.0)
    finally:
        probe.close()
    if tty:
        print()
    print(f"  caught up in {time.monotonic() - started:.0f}s")
