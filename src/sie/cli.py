"""The ``sie`` command: one subcommand per workflow stage (``sie <command> --help`` for each).

Every Snakemake rule is one call of this command, so every stage also runs without Snakemake.
Heavy imports (bpy, torch) happen inside the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sie import ownership
from sie.config import ConfigError, dataset_variant, load_config_files, resolve_config
from sie.devices import DEVICES
from sie.evaluate.registry import EVALUATIONS, PARTS, PREDICTOR_EVALUATION, PREDICTOR_PART, REFERENCES
from sie.io import describe_os_error, ensure_writable, read_json_argument
from sie.paths import CHECKPOINT_FILE, EVALUATION_FILE, fill
from sie.tables import TABLES

EXPECTED_ERRORS = (ConfigError, ValueError, FileNotFoundError, RuntimeError)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sie`` console script."""
    ownership.remember_workflow()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except OSError as error:  # a full, read-only or unwritable disk, a missing file
        if os.environ.get("SIE_DEBUG"):
            raise
        print(f"sie {args.command}: error: {describe_os_error(error)}", file=sys.stderr)
        return 1
    except EXPECTED_ERRORS as error:
        if os.environ.get("SIE_DEBUG"):
            raise
        print(f"sie {args.command}: error: {error}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="sie", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_config_command(commands)
    _add_render_command(commands)
    _add_index_command(commands)
    _add_pack_command(commands)
    _add_verify_command(commands)
    _add_methods_command(commands)
    _add_pretrain_command(commands)
    _add_features_command(commands)
    _add_evaluate_command(commands)
    _add_reference_command(commands)
    _add_tables_command(commands)
    _add_figure_commands(commands)
    return parser


def add_variant_arguments(parser: argparse.ArgumentParser) -> None:
    """--spec, or --configfile + --variant: how a stage learns which dataset variant it works on."""
    group = parser.add_argument_group("dataset variant (give --spec, or --configfile and --variant)")
    group.add_argument(
        "--spec", help="resolved variant as JSON text or a .json file (what the workflow passes)"
    )
    group.add_argument("--configfile", action="append", default=[], help="configuration YAML (repeatable)")
    group.add_argument("--variant", help="name of the dataset variant in the configuration")


def variant_from_arguments(args: argparse.Namespace):
    """The DatasetVariant described by --spec or by --configfile/--variant."""
    if args.spec:
        spec = read_json_argument(args.spec)
        name = spec.pop("name", None)
        if not name:
            raise ConfigError("--spec: the variant's 'name' is missing")
        config = resolve_config({"datasets": {name: spec}})
        return dataset_variant(name, config["datasets"][name])
    if not args.configfile or not args.variant:
        raise ConfigError("give --spec, or both --configfile and --variant")
    config = resolve_config(load_config_files(args.configfile))
    if args.variant not in config["datasets"]:
        raise ConfigError(
            f"config key 'datasets.{args.variant}': no such variant (known: {', '.join(config['datasets'])})"
        )
    return dataset_variant(args.variant, config["datasets"][args.variant])


def _add_config_command(commands: Any) -> None:
    parser = commands.add_parser(
        "config", help="validate a configuration and print it resolved (defaults filled)"
    )
    parser.add_argument("--configfile", action="append", default=["config.yaml"], help="configuration YAML")
    parser.add_argument("--variant", help="print only this dataset variant, as a --spec for other commands")
    parser.set_defaults(handler=_run_config)


def _run_config(args: argparse.Namespace) -> int:
    files = args.configfile[1:] or args.configfile
    config = resolve_config(load_config_files(files))
    if args.variant:
        if args.variant not in config["datasets"]:
            raise ConfigError(f"config key 'datasets.{args.variant}': no such variant")
        output = {"name": args.variant, **config["datasets"][args.variant]}
    else:
        output = config
    print(json.dumps(output, indent=2, sort_keys=True))
    return 0


def _add_render_command(commands: Any) -> None:
    parser = commands.add_parser("render", help="render one shard of a dataset variant with Blender")
    add_variant_arguments(parser)
    parser.add_argument("--shard", type=int, required=True, help="shard index (0-based)")
    parser.add_argument("--output", type=Path, help="variant folder (default results/datasets/<variant>)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="Cycles CPU threads")
    parser.add_argument("--device", choices=("cpu", "gpu", "auto"), default="cpu", help="Cycles device")
    parser.set_defaults(handler=_run_render)


def _run_render(args: argparse.Namespace) -> int:
    variant = variant_from_arguments(args)
    from sie.data.render import render_shard
    from sie.data.shards import shard_marker
    from sie.ownership import exclusive_lock, watch_workflow

    output = args.output or variant.output_dir
    ensure_writable(output)
    marker = shard_marker(output, args.shard)
    with exclusive_lock(marker.with_suffix(".lock"), f"render shard {args.shard} of '{variant.name}'"):
        watch_workflow()
        report = render_shard(variant, args.shard, output, threads=args.threads, device=args.device)
    per_image = report["seconds_per_image"]
    print(
        f"render {variant.name} shard {args.shard}: {report['rendered_views']} views rendered, "
        f"{report['skipped_views']} already done, "
        f"{'-' if per_image is None else f'{per_image:.3f}'} s/image on {report['device']}, "
        f"{report['wall_seconds']:.1f} s (report: {shard_marker(output, args.shard)})"
    )
    return 0


def _add_index_command(commands: Any) -> None:
    parser = commands.add_parser(
        "index", help="validate a dataset, split it, write release-format split files, statistics and card"
    )
    add_variant_arguments(parser)
    parser.add_argument("--output", type=Path, help="variant folder (default results/datasets/<variant>)")
    parser.set_defaults(handler=_run_index)


def _run_index(args: argparse.Namespace) -> int:
    variant = variant_from_arguments(args)
    from sie.data.index import build_index

    card = build_index(variant, args.output or variant.output_dir)
    print(json.dumps(card["counts"], sort_keys=True))
    return 0


def _add_pack_command(commands: Any) -> None:
    parser = commands.add_parser(
        "pack", help="pack an indexed dataset's JPEGs into one file per split (fast loading)"
    )
    parser.add_argument(
        "--dataset", type=Path, required=True, help="indexed variant folder (results/datasets/<v>)"
    )
    parser.set_defaults(handler=_run_pack)


def _run_pack(args: argparse.Namespace) -> int:
    from sie.data.store import write_store

    print(json.dumps(write_store(args.dataset), sort_keys=True))
    return 0


def _add_verify_command(commands: Any) -> None:
    parser = commands.add_parser(
        "verify",
        help="check indexed dataset folders' files against their index (sizes; --checksums re-hashes); "
        "exit status 1 and the repair command when files are damaged or missing",
        description="Checks every image and latent the index lists exists with its recorded size "
        "(--checksums: and SHA-256; --decode: decodes strictly, as `sie index` does, and needs no index). "
        "--repair deletes the damaged views of a rendered variant and the markers of their render shards, "
        "so that `snakemake datasets` re-renders exactly those views and re-indexes.",
    )
    parser.add_argument(
        "--dataset", type=Path, nargs="+", required=True, help="variant folder(s) (results/datasets/<v>)"
    )
    parser.add_argument("--checksums", action="store_true", help="also re-hash every file (reads them all)")
    parser.add_argument("--decode", action="store_true", help="also check every view as `sie index` does")
    parser.add_argument("--repair", action="store_true", help="delete damaged views for re-rendering")
    parser.set_defaults(handler=_run_verify)


def _run_verify(args: argparse.Namespace) -> int:
    from sie.data.verify import verify_command

    return verify_command(args.dataset, args.checksums, args.decode, args.repair)


def _method_registry() -> dict[str, Any]:
    """Method name -> registry entry (name, latent, layout, terms, description), in the paper's order."""
    from sie.models.registry import METHODS

    return METHODS


def _add_methods_command(commands: Any) -> None:
    parser = commands.add_parser(
        "methods",
        help="list the pretraining methods: latent, layout, loss terms and what each is",
        description="The method registry: each method's latent (rotation: the relative quaternion; "
        "rotcolor: also the floor and light hue changes), architecture layout, logged loss terms and a "
        "one-line description.",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    parser.set_defaults(handler=_run_methods)


def _run_methods(args: argparse.Namespace) -> int:
    rows = [
        {
            "name": spec.name,
            "latent": spec.latent,
            "layout": spec.layout,
            "terms": list(spec.terms),
            "description": spec.description,
        }
        for spec in _method_registry().values()
    ]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    width = max(len(row["name"]) for row in rows)
    print(f"{'method':<{width}}  {'latent':<8}  {'layout':<11}  loss terms")
    for row in rows:
        print(f"{row['name']:<{width}}  {row['latent']:<8}  {row['layout']:<11}  {', '.join(row['terms'])}")
        print(f"{'':<{width}}  {row['description']}")
    return 0


PRETRAIN_EXAMPLE = """\
by hand (the same spec as the workflow's for the same settings):
  sie pretrain --method SIE --dataset results/datasets/test --output runs/SIE \\
      --set training.epochs=10 --set model.arch=resnet9 --set training.batch_size=64

--set keys are those of the configuration's pretrain.model and pretrain.training sections
(workflow/schemas/config.schema.yaml), values YAML scalars; unset keys take the defaults."""


def _add_pretrain_command(commands: Any) -> None:
    methods = list(_method_registry())
    parser = commands.add_parser(
        "pretrain",
        help="pretrain one method on one dataset variant (one process, torchrun, or srun tasks)",
        description="Give --spec (what the workflow passes) or --method with --seed and --set (by hand).\n"
        "Resumes from --checkpoint when it exists; SIGUSR1/SIGTERM save it and exit with 143.",
        epilog=PRETRAIN_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run = parser.add_mutually_exclusive_group(required=True)
    run.add_argument("--spec", help="run spec as JSON text or a .json file (what the workflow passes)")
    run.add_argument(
        "--method",
        choices=methods,
        metavar="METHOD",
        help=f"train this method by hand, one of: {', '.join(methods)} (`sie methods` describes them)",
    )
    parser.add_argument("--dataset", type=Path, required=True, help="indexed and packed variant folder")
    parser.add_argument("--output", type=Path, required=True, help="folder of the final outputs")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="resumable checkpoint (default: <output>/checkpoint.pt; the workflow keeps its own in "
        "results/checkpoints/, outside the outputs it deletes when a job fails)",
    )
    by_hand = parser.add_argument_group("by hand (with --method)")
    by_hand.add_argument("--seed", type=int, help="training seed (default 0)")
    by_hand.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a pretrain setting, e.g. training.epochs=10 or model.equi_factor=0.45 (repeatable)",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads of torch (default: torch's)")
    parser.set_defaults(handler=_run_pretrain)


def _run_pretrain(args: argparse.Namespace) -> int:
    from sie.training.loop import pretrain

    summary = pretrain(
        _pretrain_spec(args),
        args.dataset,
        args.output,
        args.checkpoint or args.output / CHECKPOINT_FILE,
        args.threads,
    )
    if summary:
        print(json.dumps({key: summary[key] for key in ("method", "steps", "final")}, sort_keys=True))
    return 0


def _pretrain_spec(args: argparse.Namespace):
    """The RunSpec of --spec, or of --method/--seed/--set built as the workflow builds its own."""
    from sie.training.by_hand import hand_run_spec
    from sie.training.config import run_spec_from_text

    if args.spec:
        if args.seed is not None or args.settings:
            raise ConfigError("--seed and --set go with --method; with --spec, put them in the spec")
        return run_spec_from_text(args.spec)
    return hand_run_spec(args.method, args.dataset, 0 if args.seed is None else args.seed, args.settings)


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def _add_features_command(commands: Any) -> None:
    parser = commands.add_parser(
        "features", help="one pass of a frozen pretrained model over every view: the feature store"
    )
    parser.add_argument("--model", type=Path, required=True, help="model.pt written by `sie pretrain`")
    parser.add_argument("--dataset", type=Path, required=True, help="indexed and packed variant folder")
    parser.add_argument("--output", type=Path, required=True, help="feature store folder")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads of torch")
    parser.set_defaults(handler=_run_features)


def _run_features(args: argparse.Namespace) -> int:
    _set_threads(args.threads)
    ensure_writable(args.output)
    from sie.evaluate.features import compute_features

    manifest = compute_features(args.model, args.dataset, args.output, args.device, args.batch_size)
    print(json.dumps({key: manifest[key] for key in ("method", "splits", "seconds")}, sort_keys=True))
    return 0


def _add_evaluate_command(commands: Any) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="evaluations on a feature store: probes (per part) or the predictor's retrieval; one JSON each",
        description="Writes <output>/<evaluation>-<part>.json for every evaluation and part asked "
        "(the predictor evaluation writes predictor-equi.json and its health, health-equi.json).",
    )
    parser.add_argument("--features", type=Path, required=True, help="feature store folder")
    parser.add_argument(
        "--dataset", type=Path, required=True, help="indexed variant folder (latents, labels)"
    )
    parser.add_argument("--evaluation", nargs="+", required=True, choices=EVALUATIONS, help="one or more")
    parser.add_argument("--part", nargs="+", choices=PARTS, default=["all"], help="probe parts")
    parser.add_argument("--model", type=Path, help="model.pt (the predictor evaluation needs it)")
    parser.add_argument("--output", type=Path, required=True, help="folder of the metrics files")
    parser.add_argument(
        "--spec", default="{}", help="evaluate settings as JSON (the config's evaluate section)"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads of torch")
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    _set_threads(args.threads)
    from sie.evaluate import run
    from sie.evaluate.probes import ProbeSettings

    ensure_writable(args.output)
    spec = read_json_argument(args.spec)
    device = spec.get("device", "auto")
    if PREDICTOR_EVALUATION in args.evaluation and args.model is None:
        raise ConfigError("--model is required for the predictor evaluation")
    records = []
    if PREDICTOR_EVALUATION in args.evaluation:
        retrieval = {
            key: tuple(value) if key == "modes" else value for key, value in spec.get("retrieval", {}).items()
        }
        records.append(
            run.evaluate_predictor(
                args.features,
                args.dataset,
                args.model,
                args.output / fill(EVALUATION_FILE, evaluation=PREDICTOR_EVALUATION, part=PREDICTOR_PART),
                run.RetrievalSettings(**retrieval),
                device,
            )
        )
    probe_evaluations = [name for name in args.evaluation if name != PREDICTOR_EVALUATION]
    if probe_evaluations:
        settings = ProbeSettings(**spec.get("probe", {}), device=device)
        records += run.evaluate_probes(
            args.features,
            args.dataset,
            probe_evaluations,
            args.part,
            args.output,
            settings,
            spec.get("classifier", "linear"),
        )
    for record in records:
        print(
            json.dumps(
                {key: record.get(key) for key in ("method", "evaluation", "part", "applicable", "metrics")},
                sort_keys=True,
            )
        )
    return 0


def _add_reference_command(commands: Any) -> None:
    rows = "; ".join(f"{name}: {text}" for name, text in REFERENCES.items())
    parser = commands.add_parser(
        "reference",
        help="a reference row of the tables: untrained model, oracle features or chance metrics",
        description=f"The tables' reference rows (docs/evaluations.md#reference-rows). {rows}.\n"
        "untrained: --spec is a pretrain run spec, --output the run folder (model.pt). oracle: --output is "
        "a feature store folder. chance: --output is the folder of the metrics files, --spec the evaluate "
        "section.",
    )
    parser.add_argument("row", choices=list(REFERENCES), help="which reference row")
    parser.add_argument("--dataset", type=Path, required=True, help="indexed variant folder")
    parser.add_argument("--output", type=Path, required=True, help="output folder (see above)")
    parser.add_argument(
        "--spec", default="{}", help="run spec (untrained) or evaluate settings (chance), JSON"
    )
    parser.add_argument("--seed", type=int, default=0, help="noise seed (oracle), draw seed (chance)")
    parser.set_defaults(handler=_run_reference)


def _run_reference(args: argparse.Namespace) -> int:
    from sie.evaluate.reference_commands import run_reference

    ensure_writable(args.output)
    print(
        json.dumps(run_reference(args.row, args.dataset, args.output, args.spec, args.seed), sort_keys=True)
    )
    return 0


def _add_tables_command(commands: Any) -> None:
    parser = commands.add_parser(
        "tables", help="the paper's tables from metrics files: tidy CSV, LaTeX (booktabs), Markdown, HTML"
    )
    parser.add_argument("--table", nargs="+", required=True, choices=list(TABLES), help="tables to write")
    parser.add_argument("--metrics", nargs="+", type=Path, required=True, help="metrics JSON files")
    parser.add_argument("--output", type=Path, required=True, help="folder of the tables")
    parser.set_defaults(handler=_run_tables)


def _run_tables(args: argparse.Namespace) -> int:
    from sie.tables import write_tables

    tables = write_tables(args.metrics, args.output, args.table)
    for name, table in tables.items():
        print(f"{args.output / name}.tex: {len(table)} rows")
    return 0


def _add_figure_commands(commands: Any) -> None:
    curves = commands.add_parser("curves", help="training curves (loss, online probes) of pretraining runs")
    curves.add_argument("--runs", nargs="+", type=Path, required=True, help="pretraining output folders")
    curves.add_argument("--output", type=Path, required=True, help="PNG file")
    curves.set_defaults(handler=_run_curves)
    retrieval = commands.add_parser(
        "retrieval-figure",
        help="source, retrieved and true views of a model's predictor (validation objects)",
    )
    retrieval.add_argument("--features", type=Path, required=True)
    retrieval.add_argument("--model", type=Path, required=True)
    retrieval.add_argument("--dataset", type=Path, required=True)
    retrieval.add_argument("--output", type=Path, required=True, help="PNG file")
    retrieval.add_argument("--examples", type=int, default=6)
    retrieval.set_defaults(handler=_run_retrieval_figure)


def _run_curves(args: argparse.Namespace) -> int:
    from sie.figures import training_curves

    training_curves(args.runs, args.output)
    return 0


def _run_retrieval_figure(args: argparse.Namespace) -> int:
    from sie.figures import retrieval_figure

    retrieval_figure(args.features, args.model, args.dataset, args.output, args.examples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
