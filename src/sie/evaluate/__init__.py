"""Evaluations on stored features: linear/MLP probes (classification, rotation, colour) and the predictor's
retrieval metrics (PRE, MRR, H@k); docs/evaluations.md#protocol."""
