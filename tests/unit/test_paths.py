"""One home for file names and path templates (sie.paths): the rules and the package use it, nobody
re-types a name, and the outputs stay where the README says."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sie import paths

REPOSITORY = Path(__file__).resolve().parents[2]

HOMONYMS = {paths.MODELS_FOLDER}
"""Names that are also another layout's: ShapeNet's own ``<id>/models/`` folder (sie.data.objects)."""


def distinctive(name: str) -> bool:
    """Whether a name's literal text (fields and extension aside) is specific enough to search for:
    "{split}_images.npy" is, "{shard}.json" is not."""
    return len(re.sub(r"[^A-Za-z]", "", re.sub(r"\{[a-z_]+\}", "", name).rsplit(".", 1)[0])) >= 4


NAMES = {
    value
    for name, value in vars(paths).items()
    if name.endswith(("_FILE", "_FOLDER")) and isinstance(value, str) and distinctive(value)
} - HOMONYMS
"""The file and folder names of sie.paths that a re-typed copy would be found by."""


def name_pattern(name: str) -> re.Pattern:
    """A name as it would be re-typed: literal text, any field written as anything."""
    parts = re.split(r"\{[a-z_]+\}", name)
    return re.compile(r"(^|/)" + ".*".join(re.escape(part) for part in parts) + "$")


def test_fill_needs_every_field_and_partial_keeps_the_others():
    assert (
        paths.fill(paths.MODEL_PATH, variant="v", method="SIE", seed=3)
        == "results/pretrain/v/SIE/seed3/model.pt"
    )
    with pytest.raises(KeyError, match="no value for seed"):
        paths.fill(paths.MODEL_PATH, variant="v", method="SIE")
    assert (
        paths.partial(paths.EVALUATION_PATH, evaluation="rotation", part="inv")
        == "results/evaluations/{variant}/{method}/seed{seed}/rotation-inv.json"
    )
    assert paths.shard_name(7) == "0007" and paths.images_file("val") == "val_images.npy"


def test_templates_are_built_from_the_names():
    assert f"{paths.DATASET_DIR}/{paths.CARD_FILE}" == paths.CARD_PATH
    assert paths.STORE_MANIFEST_PATH.endswith(f"/{paths.STORE_FOLDER}/{paths.MANIFEST_FILE}")
    assert f"{paths.DATASET_DIR}/{paths.SHARDS_FOLDER}/{paths.SHARD_MARKER_FILE}" == paths.SHARD_MARKER_PATH
    assert set(paths.SPLIT_FILES) < set(paths.INDEX_FILES)
    assert tuple(sorted(paths.INDEX_FILES)) == paths.INDEX_FILES


@pytest.mark.parametrize(
    "template",
    [
        f"{paths.DATASET_DIR}/{paths.STORE_FOLDER}/",
        f"{paths.PRETRAIN_DIR}/",
        paths.CHECKPOINT_PATH,
        f"{paths.FEATURES_DIR}/",
        paths.EVALUATION_PATH,
        f"{paths.LOGS_DIR}/",
    ],
)
def test_the_readme_table_names_the_templates(template):
    """README's "What you get" writes ``<variant>`` for ``{variant}`` (and ``seed<s>`` for the seed)."""
    readme = (REPOSITORY / "README.md").read_text()
    written = template.replace("{seed}", "<s>").replace("{", "<").replace("}", ">")
    assert f"`{written}`" in readme


def test_the_paths_module_imports_nothing_heavy():
    code = "import sys, sie.paths; print(sorted(m for m in ('numpy', 'torch', 'yaml') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def retyped_names(path: Path) -> list[str]:
    """``folder / "name"`` or ``folder / f"...name"`` in a module, where ``name`` is a sie.paths name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)):
            continue
        right = node.right
        if isinstance(right, ast.Constant) and isinstance(right.value, str):
            text = right.value
        elif isinstance(right, ast.JoinedStr):
            text = "".join(part.value if isinstance(part, ast.Constant) else "{x}" for part in right.values)
        else:
            continue
        if any(name_pattern(name).search(text) for name in NAMES):
            found.append(f"{path.relative_to(REPOSITORY)}:{node.lineno}: {text!r}")
    return found


def test_no_module_re_types_a_file_name():
    modules = sorted((REPOSITORY / "src" / "sie").rglob("*.py"))
    found = [entry for module in modules if module.name != "paths.py" for entry in retyped_names(module)]
    assert not found, "file names re-typed instead of imported from sie.paths:\n" + "\n".join(found)


def test_no_rule_re_types_a_results_path():
    files = [REPOSITORY / "Snakefile", *sorted((REPOSITORY / "workflow" / "rules").glob("*.smk"))]
    found = [
        f"{path.relative_to(REPOSITORY)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"[\"']results/", line)
    ]
    assert not found, "paths re-typed in the rules instead of taken from sie.paths:\n" + "\n".join(found)


def test_the_workflow_builds_its_paths_from_structured_values():
    """sie.workflow fills the templates from (variant, method, seed, evaluation, part) and filters on
    those values, never on a path's text."""
    import yaml

    from sie.config import resolve_config
    from sie.models.methods import METHODS
    from sie.workflow import evaluations, figure_files, run_paths, table_inputs

    predictor_methods = {name for name, spec in METHODS.items() if spec.has_predictor}

    config = resolve_config(yaml.safe_load((REPOSITORY / "configs" / "test.yaml").read_text()))
    entries = evaluations(config)
    assert entries[0].path == paths.fill(paths.EVALUATION_PATH, **entries[0]._asdict())
    mrr = table_inputs(config, "mrr")
    with_predictor = {entry.method for entry in entries if entry.method in predictor_methods}
    assert 0 < len(with_predictor) < len({entry.method for entry in entries})
    assert mrr == [
        entry.path
        for entry in entries
        if entry.evaluation in ("predictor", "health")
        and (entry.method in with_predictor or entry.method in ("untrained", "chance"))
    ]
    assert "results/evaluations/test/chance/seed0/predictor-equi.json" in mrr
    assert "results/evaluations/test/chance/seed0/health-equi.json" not in [entry.path for entry in entries]
    assert run_paths(paths.SUMMARY_PATH, [("test", "SIE", 0)]) == [
        "results/pretrain/test/SIE/seed0/summary.json"
    ]
    assert figure_files(config)[0] == paths.fill(paths.TRAINING_FIGURE_PATH, variant="test")
