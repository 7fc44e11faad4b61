"""Each biometric metric's unit and LOINC code, named once.

The connectors write these on every ``BiometricSample``; validation dead-letters a sample whose
unit differs. Units are Open mHealth's (heart rate ``beats/min``, step count ``steps``, RR
interval ``ms``); keys are the symbols of :class:`schemas.models.Metric` bar ``UNKNOWN``.
"""

from __future__ import annotations

# LOINC code of each metric; None where there is none.
METRIC_LOINC: dict[str, str | None] = {
    "HEART_RATE": "8867-4",
    "RESTING_HEART_RATE": "40443-4",
    "HRV_SDNN": "80404-7",
    "HRV_RMSSD": None,  # RMSSD has no LOINC code
    "STEPS": "55423-8",
    "SLEEP_STAGE": None,
    "SPO2": "59408-5",
    "RESPIRATORY_RATE": "9279-1",
}
# The unit a sample of each metric carries.
METRIC_UNIT: dict[str, str] = {
    "HEART_RATE": "beats/min",
    "RESTING_HEART_RATE": "beats/min",
    "HRV_SDNN": "ms",
    "HRV_RMSSD": "ms",
    "STEPS": "steps",
    "SLEEP_STAGE": "s",
    "SPO2": "%",
    "RESPIRATORY_RATE": "breaths/min",
}
