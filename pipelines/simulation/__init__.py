"""The synthetic world with known ground truth (synthetic), the command that writes it (generate) and the reader of
that ground truth (truth). The runtime never imports the simulator: training reads the ground truth, for the oracle
ROC AUC, through :mod:`pipelines.simulation.truth` only."""

# Known changes a dataset can be generated with from a date (``SyntheticConfig.drift``): here, not in the simulator,
# so that the command line lists them without importing it.
DRIFTS = ("survey_stop", "app_outage")
