"""Feature store and evaluations of a tiny pretrained model; strict loading of model files."""

import json
import math

import numpy as np
import pytest
import torch
from runs import tiny_spec

from sie.data.pairs import normalize
from sie.data.readers import open_reader
from sie.evaluate.features import compute_features, load_split
from sie.evaluate.probes import ProbeSettings
from sie.evaluate.run import PROBES, RetrievalSettings, evaluate_predictor, evaluate_probe
from sie.models.files import load_pretrained
from sie.training import checkpoint
from sie.training.loop import pretrain

pytestmark = pytest.mark.slow
FAST_PROBES = ProbeSettings(epochs=2, batch_size=4, hidden_dims=16, val_pairs_per_object=2, device="cpu")


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    """SIE and VICReg trained for one epoch, with their feature stores."""
    folder = tmp_path_factory.mktemp("trained")
    for method in ("SIE", "VICReg"):
        pretrain(
            tiny_spec(method, epochs=1), tiny_dataset, folder / method, folder / f"{method}.pt", threads=1
        )
        compute_features(folder / method / "model.pt", tiny_dataset, folder / method / "features", "cpu", 5)
    return folder


def test_features_are_the_eval_mode_backbone_in_row_order(trained, tiny_dataset):
    model, payload = load_pretrained(trained / "SIE" / "model.pt")
    manifest = json.loads((trained / "SIE" / "features" / "manifest.json").read_text())
    assert manifest["inv_dims"] == 24 and manifest["has_predictor"] and manifest["embedding_dim"] == 4
    for split in ("train", "val"):
        representations = load_split(trained / "SIE" / "features", split)
        embeddings = load_split(trained / "SIE" / "features", split, "embeddings")
        rows = len(open_reader(tiny_dataset, split))
        assert representations.shape == (rows, 32) and embeddings.shape == (rows, 4)  # projector 16 * 8/32
        picked = np.array([0, rows // 2, rows - 1])
        normalization = payload["normalization"]
        images = normalize(
            open_reader(tiny_dataset, split).read_images(picked), normalization["mean"], normalization["std"]
        )
        with torch.no_grad():
            expected = model.backbone(images)
            expected_embeddings = model.embed(expected)[:, model.inv_embedding_dims :]
        np.testing.assert_allclose(representations[picked], expected.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(embeddings[picked], expected_embeddings.numpy(), rtol=1e-5, atol=1e-6)
    assert not (trained / "VICReg" / "features" / "train_embeddings.npy").exists()


def test_probe_and_predictor_files(trained, tiny_dataset):
    features = trained / "SIE" / "features"
    record = evaluate_probe(
        features, tiny_dataset, "rotation", "equi", trained / "out" / "rotation-equi.json", FAST_PROBES
    )
    assert record["applicable"] and set(record["metrics"]) == {"r2", "mse"}
    assert (trained / "out" / "tensorboard" / "rotation-equi").is_dir()
    record = evaluate_probe(
        features, tiny_dataset, "classification", "inv", trained / "out" / "c.json", FAST_PROBES
    )
    assert set(record["metrics"]) == {"top1", "top5", "loss"} and 0 <= record["metrics"]["top1"] <= 1
    record = evaluate_predictor(
        features,
        tiny_dataset,
        trained / "SIE" / "model.pt",
        trained / "out" / "p.json",
        RetrievalSettings(),
        device="cpu",
    )
    assert {"PRE/train-train", "PRE/val-val", "PRE/val-all", "MRR/val-val", "H@1/train-train"} <= set(
        record["metrics"]
    )


def test_not_applicable_evaluations_say_why(trained, tiny_dataset):
    features = trained / "VICReg" / "features"
    output = trained / "na" / "rotation-equi.json"
    evaluate_probe(features, tiny_dataset, "rotation", "equi", output, FAST_PROBES)
    record = json.loads(output.read_text())
    assert record == {
        "variant": "tiny",
        "method": "VICReg",
        "seed": 0,
        "evaluation": "rotation",
        "part": "equi",
        "applicable": False,
        "reason": "VICReg has no equivariant part of its representation",
    }
    evaluate_predictor(
        features,
        tiny_dataset,
        trained / "VICReg" / "model.pt",
        trained / "na" / "p.json",
        RetrievalSettings(),
        device="cpu",
    )
    assert (
        "has no transformation-conditioned predictor"
        in json.loads((trained / "na" / "p.json").read_text())["reason"]
    )


def test_model_files_load_strictly(trained, tmp_path):
    payload = checkpoint.load(trained / "SIE" / "model.pt")
    wrong_method = {**payload, "method": "SIENoVar"}
    checkpoint.save(tmp_path / "renamed.pt", {**wrong_method, "method": "VICReg"})
    with pytest.raises(
        ValueError, match=r"renamed\.pt: weights do not fit this model \(missing: .*unexpected: "
    ):
        load_pretrained(tmp_path / "renamed.pt")
    state = dict(payload["state_dict"])
    state["backbone.conv1.weight"] = torch.zeros(8, 3, 7, 7)
    checkpoint.save(tmp_path / "reshaped.pt", {**payload, "state_dict": state})
    with pytest.raises(
        ValueError, match=r"reshaped\.pt: .*shape mismatch: backbone\.conv1\.weight \(8, 3, 7, 7\)"
    ):
        load_pretrained(tmp_path / "reshaped.pt")
    checkpoint.save(tmp_path / "foreign.pt", {"weights": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"foreign\.pt: not a model\.pt of `sie pretrain`"):
        load_pretrained(tmp_path / "foreign.pt")


def test_parts_with_the_same_columns_are_trained_once(trained, tiny_dataset):
    from sie.evaluate.run import evaluate_probes

    records = evaluate_probes(
        trained / "VICReg" / "features",
        tiny_dataset,
        ["color"],
        ["inv", "equi", "all"],
        trained / "dedupe",
        FAST_PROBES,
    )
    by_part = {record["part"]: record for record in records}
    assert (
        by_part["inv"]["metrics"] == by_part["all"]["metrics"] and by_part["inv"]["same_columns_as"] == "all"
    )
    assert not by_part["equi"]["applicable"]
    assert json.loads((trained / "dedupe" / "color-inv.json").read_text())["part"] == "inv"


@pytest.fixture
def bench_modules(repository, monkeypatch):
    """bench/evaluation.py and bench/original_protocol.py, importable."""
    monkeypatch.syspath_prepend(str(repository / "bench"))
    import evaluation
    import original_protocol

    return evaluation, original_protocol


def test_bench_original_protocol_sees_the_stored_features_with_eval_mode_batchnorm(
    trained, tiny_dataset, bench_modules
):
    _, original = bench_modules
    settings = ProbeSettings(epochs=1, batch_size=4, hidden_dims=16, device="cpu")
    probe = original.OriginalProbe(
        trained / "SIE" / "model.pt", tiny_dataset, "rotation", "all", settings, original.Protocol("eval")
    )
    probe.model.backbone.eval()
    (rows, _target), *_ = probe.draw("train", np.arange(4))
    (images,) = probe.images("train", [rows])
    stored = load_split(trained / "SIE" / "features", "train")
    expected = np.concatenate([stored[rows[:4]], stored[rows[4:]]], axis=1)
    np.testing.assert_allclose(probe.inputs(images).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_bench_original_protocol_as_its_scripts_run_it_gives_the_lean_metrics(
    trained, tiny_dataset, bench_modules
):
    _, original = bench_modules
    # batches of 3 of the 9 training objects: train-mode BatchNorm refuses a batch of one, as the original
    settings = ProbeSettings(epochs=2, batch_size=3, hidden_dims=16, device="cpu")
    model = trained / "SIE" / "model.pt"
    _, lean = original.run_original(model, tiny_dataset, settings, ["inv", "all"], original.Protocol("train"))
    scripted_protocol = original.Protocol("train", loader_workers=1)
    _, scripted = original.run_original(model, tiny_dataset, settings, ["inv", "all"], scripted_protocol)
    assert scripted == lean
    assert set(lean) == {f"{evaluation}-{part}" for evaluation in PROBES for part in ("inv", "all")}
    with pytest.raises(ValueError, match="batchnorm must be one of"):
        original.Protocol("frozen")


def test_bench_seed_noise_rule(bench_modules):
    evaluation, _ = bench_modules
    difference, error, within = evaluation.within_noise([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])
    assert difference == pytest.approx(0.1) and error == pytest.approx(math.sqrt(2 * 0.01 / 3))
    assert within  # 0.1 <= 2 * 0.0816
    assert not evaluation.within_noise([0.9, 0.91, 0.92], [0.4, 0.41, 0.42])[2]


def test_the_untrained_reference_is_where_the_run_starts(tiny_dataset, tmp_path):
    """A run with a vanishing learning rate (Adam moves each weight by about lr = 1e-30) ends where it
    started: its parameters are the untrained reference's; features and health name the row."""
    from sie.training.untrained import write_untrained

    spec = tiny_spec("SIE", epochs=1, lr=1e-30)
    pretrain(spec, tiny_dataset, tmp_path / "run", tmp_path / "run.pt", threads=1)
    write_untrained(spec, tiny_dataset, tmp_path / "untrained")
    started, _ = load_pretrained(tmp_path / "untrained" / "model.pt")
    trained, _ = load_pretrained(tmp_path / "run" / "model.pt")
    for (name, initial), (_, after) in zip(
        started.named_parameters(), trained.named_parameters(), strict=True
    ):
        assert torch.allclose(initial, after, rtol=0, atol=1e-20), name
    norms = [module for module in started.backbone.modules() if isinstance(module, torch.nn.BatchNorm2d)]
    assert norms and all(norm.running_mean.abs().sum() > 0 for norm in norms)  # estimated, not the 0 / 1 init
    again = tmp_path / "again"
    write_untrained(spec, tiny_dataset, again)
    assert (again / "model.pt").read_bytes() == (tmp_path / "untrained" / "model.pt").read_bytes()
    manifest = compute_features(
        tmp_path / "untrained" / "model.pt", tiny_dataset, tmp_path / "features", "cpu", 5
    )
    assert manifest["method"] == "untrained" and manifest["architecture"] == "SIE"
    output = tmp_path / "evaluations" / "predictor-equi.json"
    evaluate_predictor(
        tmp_path / "features", tiny_dataset, tmp_path / "untrained" / "model.pt", output, RetrievalSettings()
    )
    health = json.loads((output.parent / "health-equi.json").read_text())
    assert health["method"] == "untrained" and health["applicable"]
    assert set(health["metrics"]) >= {"error/identity/train", "ratio/true-shuffled/val", "uses_latent/val"}
