"""One patient's twin trajectory as a PNG (the demo and ``novamind twin plot``).

Drawing needs matplotlib, the optional ``plot`` extra (``pip install 'novamind[plot]'``): it is
imported only when a plot is drawn or :func:`require_matplotlib` checks for it, so the workers'
image goes without it.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from novamind.platform.exceptions import MissingExtra
from schemas.assessments import instrument_spec


def latest_features(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last revision of every patient-day."""
    latest: dict[tuple[str, Any], dict[str, Any]] = {}
    for record in records:
        key = (record["patient_id"], record["date"])
        if key not in latest or record["revision"] >= latest[key]["revision"]:
            latest[key] = record
    return list(latest.values())


def require_matplotlib() -> None:
    """Raise :class:`~novamind.platform.exceptions.MissingExtra` unless matplotlib can be imported."""
    _matplotlib()


def _matplotlib() -> tuple[ModuleType, ModuleType]:
    """matplotlib's ``pyplot`` and ``dates`` on the non-interactive Agg backend.

    Raises :class:`~novamind.platform.exceptions.MissingExtra` without matplotlib.
    """
    try:
        # lazy: matplotlib is the optional "plot" extra
        import matplotlib
        import matplotlib.dates
        import matplotlib.pyplot
    except ImportError as exc:
        raise MissingExtra(
            "drawing a twin needs matplotlib, the optional 'plot' extra: pip install 'novamind[plot]'"
        ) from exc
    matplotlib.use("Agg")
    return matplotlib.pyplot, matplotlib.dates


def plot_trajectory(
    patient: str,
    features: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    out: Path,
) -> None:
    """Daily severity, PHQ-9, the twin's forecasts and its alerts for one patient.

    Raises :class:`~novamind.platform.exceptions.MissingExtra` without matplotlib.
    """
    plt, mdates = _matplotlib()
    days = sorted((f for f in features if f["patient_id"] == patient), key=lambda f: f["date"])
    mine = [u for u in updates if u["patient_id"] == patient]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    top.plot(
        [f["date"] for f in days], [f["symptom_severity_mean"] for f in days], ".-", label="daily severity"
    )
    top.plot([u["as_of_date"] for u in mine], [u["forecast_severity"] for u in mine], "--", label="forecast")
    for alert in (a for a in alerts if a["patient_id"] == patient):
        top.axvline(alert["event_time"].date(), color="red", alpha=0.4)
    top.set_ylabel("severity 0-10")
    top.set_ylim(0, 10.5)
    top.legend(loc="upper left")
    phq = [(f["date"], f["phq9_total"]) for f in days if f["phq9_total"] is not None]
    bottom.plot([d for d, _ in phq], [v for _, v in phq], "o-", label="PHQ-9")
    bottom.plot(
        [u["as_of_date"] for u in mine], [u["forecast_phq9"] for u in mine], "--", label="PHQ-9 forecast"
    )
    phq9 = instrument_spec("PHQ9")
    for lower, band in phq9.bands[1:]:  # the band boundaries, named at the right edge
        bottom.axhline(lower, color="grey", linestyle=":", linewidth=0.8)
        bottom.annotate(
            band.value.lower().replace("_", " "),
            (1.0, lower),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 2),
            textcoords="offset points",
            ha="right",
            fontsize=7,
            color="grey",
        )
    bottom.set_ylim(0, phq9.max_total + 0.5)
    bottom.set_ylabel("PHQ-9 total")
    bottom.legend(loc="upper left")
    locator = mdates.AutoDateLocator()
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    fig.suptitle(f"Twin trajectory of {patient} (red: alerts)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
