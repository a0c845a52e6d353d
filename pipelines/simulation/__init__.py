"""The synthetic world with known ground truth (synthetic), the command that writes it (generate) and the reader of
that ground truth (truth). The runtime never imports the simulator: training reads the ground truth, for the oracle
ROC AUC, through :mod:`pipelines.simulation.truth` only."""
