"""The names of the evaluations, of the representation parts they probe and of their options, written
once (torch-free: the CLI's choices, the workflow's wildcards and the tests of the schema's enums read
them; ``sie.evaluate.run`` and ``sie.evaluate.probes`` attach the code). docs/evaluations.md#protocol.
"""

PROBE_EVALUATIONS = ("classification", "rotation", "color")
"""Heads trained on stored features, one metrics file per part (``sie.evaluate.probes``)."""

PREDICTOR_EVALUATION = "predictor"
"""PRE, MRR and H@k of the learned predictor (``sie.evaluate.retrieval``)."""

EVALUATIONS = (*PROBE_EVALUATIONS, PREDICTOR_EVALUATION)

PARTS = ("inv", "equi", "all")
"""Columns of a representation: inv = the first (invariant) dims, equi = the rest, all = every column."""

PREDICTOR_PART = "equi"
"""The one part of the predictor evaluation (the predictor acts on the equivariant embedding)."""

HEADS = ("linear", "mlp")
"""Classification heads (the evaluate section's ``classifier``)."""

RETRIEVAL_MODES = ("train-train", "val-val", "val-all")
"""Query split - bank split of the predictor's retrieval (``all``: train and val views)."""

RETRIEVAL_DTYPES = ("float32", "bfloat16")
"""Precision of the retrieval bank's similarities."""
