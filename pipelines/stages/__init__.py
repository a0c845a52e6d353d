"""The pipeline stages a command runs: snapshot (features and labels), train, score and recover. Validation is
:func:`pipelines.contract.validate_dataset`, run through an engine (:mod:`pipelines.engines`)."""
