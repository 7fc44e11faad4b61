"""``make demo``: the main job end to end on the local services, with a readable summary.

1. Creates this run's topics (own prefix) and database, and starts two worker replicas and
   the patient-reporting intake as subprocesses.
2. Simulates a cohort (20 patients x 60 days by default) and feeds it one UTC day at a time
   through the product's entry points, waiting for the workers after each day
   (:mod:`novamind.app.demo.plan`, :mod:`novamind.app.demo.feed`):

   * wearables: Fitbit Web API JSON (Fitbit patients) and Open mHealth heart-rate and
     step-count points (Apple Health patients), written by ``connectors.simulator.emit``
     and imported with the jobs of ``novamind connect fitbit|openmhealth``
     (``connectors.jobs.run_wearable``);
   * EHR: FHIR R4 Bundles (Patient, MedicationStatement) imported with the job of
     ``novamind connect fhir`` (``connectors.jobs.run_fhir_files``);
   * symptom reports and PHQ-9 / GAD-7: submitted to the intake over HTTP with each
     patient's bearer token (the intake answers once Kafka has the event).

   Published straight to the topics, because no vendor file carries them: the simulator's
   deliberately defective records (out-of-range values, wrong units, future timestamps,
   undecodable bytes; emitters write well-formed data and the intake refuses bad input)
   and the Apple Health patients' resting heart rate, HRV (SDNN) and sleep stages (the
   Open mHealth emitter writes heart-rate and step-count points only).
3. Shows progress per day and the lag countdown until the workers have caught up, stops
   the subprocesses, then summarises twins by risk level, alerts, data quality, dead letters
   and the worker logs, draws one patient's twin trajectory and prints commands to explore.
"""

from novamind.app.demo.plot import latest_features, plot_trajectory

__all__ = ["latest_features", "plot_trajectory"]
