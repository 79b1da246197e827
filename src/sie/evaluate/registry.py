"""The names of the evaluations, of the representation parts they probe and of their options, written
once (torch-free: the CLI's choices, the workflow's wildcards and the tests of the schema's enums read
them; ``sie.evaluate.run`` and ``sie.evaluate.probes`` attach the code). docs/evaluations.md#protocol.
"""

PROBE_EVALUATIONS = ("classification", "rotation", "color")
"""Heads trained on stored features, one metrics file per part (``sie.evaluate.probes``)."""

PREDICTOR_EVALUATION = "predictor"
"""PRE, MRR and H@k of the learned predictor (``sie.evaluate.retrieval``)."""

EVALUATIONS = (*PROBE_EVALUATIONS, PREDICTOR_EVALUATION)
"""The evaluations a configuration chooses (``evaluate.evaluations``)."""

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

HEALTH_EVALUATION = "health"
"""The predictor's errors with the true, a shuffled and no latent (``sie.evaluate.health``); written by
the predictor evaluation next to its retrieval metrics, in ``health-equi.json``."""

UNTRAINED, ORACLE, CHANCE = "untrained", "oracle", "chance"
REFERENCES = {
    UNTRAINED: "untrained backbone and predictor of SIE's shape (the seed's initial weights), through the "
    "same features, probes and predictor evaluation",
    ORACLE: "probes fed the view's true factors plus noise (class one-hot as the invariant part, rotation "
    "matrix and hues as the equivariant part): what the probes can reach on this data",
    CHANCE: "no learning: the training mean of each target component (R²), the most frequent training "
    "class (top-1), a random ranking of the views (MRR, H@k) and a random neighbour (PRE)",
}
"""Reference rows of the tables (docs/evaluations.md#reference-rows): pseudo-methods whose metrics files
sit beside the methods' ones, shown in their own block and never ranked with the methods."""

UNTRAINED_SHAPE = "SIE"
"""The method whose model the untrained reference is (the configuration's SIE settings apply)."""
