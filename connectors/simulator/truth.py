"""Hidden daily mood state per patient: AR(1) noise, deterioration episodes, and medication
starts whose response arrives after a 2-4 week delay. This is the simulator's ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PHI, SIGMA = 0.8, 0.3          # AR(1) persistence and innovation sd of the mood noise
EPISODE_RATE = 1 / 45          # daily probability that a deterioration episode starts
MED_TRIGGER, MED_TRIGGER_DAYS = -1.2, 3


@dataclass(frozen=True, slots=True)
class MoodTruth:
    """Arrays of length ``days``: mood (0 ~ usual, negative = worse) and its components."""

    mood: np.ndarray
    episode: np.ndarray        # episode depth subtracted from mood (>= 0)
    med_effect: np.ndarray     # medication response added to mood (>= 0)
    med_start_day: int | None
    med_response_delay: int | None


def _episode_shape(length: int, depth: float) -> np.ndarray:
    ramp = np.minimum(1.0, (np.arange(length) + 1) / 5.0)
    recover = np.linspace(1.0, 0.0, 8)[1:]
    return depth * np.concatenate([ramp, recover])


def simulate_mood(rng: np.random.Generator, days: int) -> MoodTruth:
    """One patient's daily latent mood for ``days`` days."""
    baseline = rng.normal(0.0, 0.4)
    noise = np.empty(days)
    z = rng.normal(0.0, SIGMA)
    for t, eps in enumerate(rng.normal(0.0, SIGMA, days)):
        z = PHI * z + eps
        noise[t] = z
    episode = np.zeros(days)
    t = 0
    starts = rng.random(days)
    while t < days:
        if starts[t] < EPISODE_RATE:
            shape = _episode_shape(int(rng.integers(10, 31)), float(rng.uniform(1.0, 2.2)))
            end = min(days, t + len(shape))
            episode[t:end] += shape[: end - t]
            t = end
        t += 1
    med = np.zeros(days)
    mood = baseline + noise - episode
    start = delay = None
    low = 0
    for t in range(days):
        low = low + 1 if mood[t] < MED_TRIGGER else 0
        if low >= MED_TRIGGER_DAYS and start is None and rng.random() < 0.6:
            start, delay = t, int(rng.integers(14, 29))
            response = float(rng.uniform(0.6, 1.3))
            ramp = np.clip((np.arange(days) - (t + delay)) / 14.0, 0.0, 1.0)
            med = response * ramp
            mood = baseline + noise - episode + med
    return MoodTruth(mood, episode, med, start, delay)


def expected_scores(mood: float) -> tuple[float, float, float]:
    """(PHQ-9 total, GAD-7 total, symptom severity 0..10) expected at a mood level."""
    phq = float(np.clip(6.0 - 6.0 * mood, 0, 27))
    gad = float(np.clip(5.0 - 4.5 * mood, 0, 21))
    sev = float(np.clip(3.0 - 2.2 * mood, 0, 10))
    return phq, gad, sev
