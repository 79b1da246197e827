"""The 14 methods: build, train one step, and match a plain re-derivation of their losses
(docs/method.md#methods).

The re-derivation below uses numpy on the model's own intermediate outputs (``SSLModel.encode``) and
is independent of ``sie.models.losses``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.multiprocessing as multiprocessing

from sie import dist
from sie.models.methods import METHODS, ModelConfig, build_model

NAMES = [
    "SIE",
    "SIENoVar",
    "SIEOnlyEqui",
    "SIERotColor",
    "VICReg",
    "VICRegPartInv",
    "VICRegEquiMod",
    "SimCLR",
    "SimCLROnlyEqui",
    "SimCLROnlyEquiRotColor",
    "SimCLRAugSelf",
    "SimCLRAugSelfRotColor",
    "SimCLREquiMod",
    "SimCLREquiModRotColor",
]
ROTCOLOR = {"SIERotColor", "SimCLROnlyEquiRotColor", "SimCLRAugSelfRotColor", "SimCLREquiModRotColor"}
# resnet9 at width 8: 64-d representation; projector 32-32-32; SIE split 48 inv / 16 equi.
# Distinct coefficients so that a swapped weight cannot go unnoticed.
CONFIG = ModelConfig(
    arch="resnet9",
    width=8,
    mlp="32-32-32",
    equi=16,
    sim_coeff=3.0,
    std_coeff=7.0,
    cov_coeff=2.0,
    equi_factor=0.45,
    simclr_temp=0.2,
    ec_weight=0.7,
    num_classes=5,
)
BATCH = 8


def make_batch(method: str, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    latent_dim = 6 if method in ROTCOLOR else 4
    view1 = torch.randn(BATCH, 3, 32, 32, generator=generator)
    view2 = torch.randn(BATCH, 3, 32, 32, generator=generator)
    latent = torch.randn(BATCH, latent_dim, generator=generator)
    labels = torch.randint(0, CONFIG.num_classes, (BATCH,), generator=generator)
    return view1, view2, latent, labels


def build(method: str, config: ModelConfig = CONFIG):
    torch.manual_seed(0)
    return build_model(method, config)


# ------------------------------------------------------------------------- plain numpy re-derivation


def mse(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.mean((first - second) ** 2))


def variance(matrix: np.ndarray) -> float:
    return float(np.mean(np.maximum(0.0, 1.0 - np.sqrt(matrix.var(axis=0, ddof=1) + 1e-4))))


def covariance(matrix: np.ndarray) -> float:
    rows, dims = matrix.shape
    centred = matrix - matrix.mean(axis=0)
    product = centred.T @ centred / (rows - 1)
    return float(((product - np.diag(np.diag(product))) ** 2).sum() / dims)


def nt_xent(first: np.ndarray, second: np.ndarray, temperature: float) -> float:
    rows = len(first)
    stacked = np.concatenate([first, second])
    stacked = stacked / np.linalg.norm(stacked, axis=1, keepdims=True)
    logits = stacked @ stacked.T / temperature
    total = 0.0
    for anchor in range(2 * rows):
        positive = (anchor + rows) % (2 * rows)
        others = [logits[anchor, other] for other in range(2 * rows) if other != anchor]
        total += -logits[anchor, positive] + math.log(sum(math.exp(value) for value in others))
    return total / (2 * rows)


def regulariser(first: np.ndarray, second: np.ndarray, config: ModelConfig) -> float:
    std_part = config.std_coeff * (variance(first) + variance(second)) / 2
    return std_part + config.cov_coeff * (covariance(first) + covariance(second))


def reference_loss(method: str, outputs: dict[str, np.ndarray], config: ModelConfig) -> float:
    """The SSL loss (docs/method.md#methods) from representations r, embeddings e, prediction p, AugSelf a."""
    e_x, e_y, prediction, latent = outputs["e_x"], outputs["e_y"], outputs.get("p"), outputs["z"]
    s, v, gamma, temperature = config.sim_coeff, config.std_coeff, config.equi_factor, config.simclr_temp
    if method == "VICReg":
        return s * mse(e_x, e_y) + regulariser(e_x, e_y, config)
    if method == "VICRegPartInv":  # equi counts embedding dims left out of the invariance
        kept = e_x.shape[1] - config.equi
        return s * mse(e_x[:, :kept], e_y[:, :kept]) + regulariser(e_x, e_y, config)
    if method == "SimCLR":
        return nt_xent(e_x, e_y, temperature)
    if method in ("SimCLRAugSelf", "SimCLRAugSelfRotColor"):
        return nt_xent(e_x, e_y, temperature) + config.ec_weight * mse(outputs["a"], latent)
    if method in ("SimCLROnlyEqui", "SimCLROnlyEquiRotColor"):
        return nt_xent(prediction, e_y, temperature)
    half = e_x.shape[1] // 2  # EquiMod: [inv head; equi head], equal widths
    if method in ("SimCLREquiMod", "SimCLREquiModRotColor"):
        factor = gamma if method == "SimCLREquiMod" else 1.0
        return nt_xent(e_x[:, :half], e_y[:, :half], temperature) + factor * nt_xent(
            prediction, e_y[:, half:], temperature
        )
    if method == "VICRegEquiMod":
        invariant = s * mse(e_x[:, :half], e_y[:, :half]) + regulariser(e_x[:, :half], e_y[:, :half], config)
        equivariant = s * mse(prediction, e_y[:, half:]) + regulariser(e_x[:, half:], e_y[:, half:], config)
        return invariant + gamma * equivariant
    if method == "SIEOnlyEqui":
        return s * mse(prediction, e_y) + regulariser(e_x, e_y, config) + v * variance(prediction) / 2
    # SIE family: inv embedding width = round(mlp * (R - equi) / R).
    representation_dim = outputs["r_x"].shape[1]
    inv = round(int(config.mlp.split("-")[-1]) * (representation_dim - config.equi) / representation_dim)
    loss = s * mse(e_x[:, :inv], e_y[:, :inv]) + s * gamma * mse(prediction, e_y[:, inv:])
    loss += regulariser(e_x, e_y, config)
    if method in ("SIE", "SIERotColor"):
        loss += v * variance(prediction) / 2
    return loss


# -------------------------------------------------------------------------------------------- tests


def test_registry_names() -> None:
    assert list(METHODS) == NAMES
    assert {name for name, spec in METHODS.items() if spec.latent == "rotcolor"} == ROTCOLOR
    with_predictor = {name for name, spec in METHODS.items() if spec.has_predictor}
    assert with_predictor == set(NAMES) - {
        "VICReg",
        "VICRegPartInv",
        "SimCLR",
        "SimCLRAugSelf",
        "SimCLRAugSelfRotColor",
    }


def test_config_rejects_unknown_choices() -> None:
    with pytest.raises(ValueError, match="predictor_type"):
        ModelConfig(predictor_type="transformer")
    with pytest.raises(TypeError):
        ModelConfig(unknown_key=1)  # type: ignore[call-arg]


def test_unknown_method_lists_known_names() -> None:
    with pytest.raises(ValueError, match=r"SIENoVar.*SimCLREquiModRotColor"):
        build_model("BYOL", CONFIG)


@pytest.mark.parametrize("method", ["SIE", "SIERotColor", "VICReg"])
def test_wrong_latent_width_is_a_clear_error(method: str) -> None:
    model = build(method)
    view1, view2, latent, labels = make_batch(method)
    wrong = torch.zeros(BATCH, 10 - latent.shape[1])
    with pytest.raises(ValueError, match="latent"):
        model(view1, view2, wrong, labels)


@pytest.mark.parametrize("method", NAMES)
def test_train_step(method: str) -> None:
    model = build(method)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-6)
    output = model(*make_batch(method))
    assert torch.isfinite(output.loss)
    assert set(output.terms) == {*METHODS[method].terms, "ssl", "probe"}
    assert all(term.ndim == 0 and not term.requires_grad for term in output.terms.values())
    assert output.metrics["representations/top1"].item() >= 0
    before = [parameter.detach().clone() for parameter in model.backbone.parameters()]
    optimizer.zero_grad()
    output.loss.backward()
    optimizer.step()
    assert any(
        not torch.equal(old, new) for old, new in zip(before, model.backbone.parameters(), strict=True)
    )


@pytest.mark.parametrize("method", NAMES)
def test_loss_matches_reference_formula(method: str) -> None:
    model = build(method)
    view1, view2, latent, labels = make_batch(method, seed=3)
    features = model.encode(view1, view2, latent)  # train-mode BN: the same outputs as inside forward
    outputs = {
        "r_x": features.representations[0],
        "e_x": features.embeddings[0],
        "e_y": features.embeddings[1],
        "p": features.prediction,
        "a": features.augself_prediction,
        "z": latent,
    }
    arrays = {key: value.detach().double().numpy() for key, value in outputs.items() if value is not None}
    expected = reference_loss(method, arrays, CONFIG)
    output = model(view1, view2, latent, labels)
    assert output.terms["ssl"].item() == pytest.approx(expected, rel=1e-4)
    torch.testing.assert_close(output.loss, output.terms["ssl"] + output.terms["probe"])


@pytest.mark.parametrize("method", ["SIE", "VICRegPartInv", "SimCLREquiMod", "SIEOnlyEqui", "SimCLRAugSelf"])
def test_wiring_of_parts(method: str) -> None:
    """Which representation dims feed which projector, and what the predictor / AugSelf head see."""
    model = build(method)
    view1, view2, latent, _ = make_batch(method)
    features = model.encode(view1, view2, latent)
    r_x, e_x = features.representations[0], features.embeddings[0]
    expected_split = {
        "SIE": (48, 24),
        "VICRegPartInv": (64, 16),
        "SimCLREquiMod": (0, 32),
        "SIEOnlyEqui": (0, 0),
    }
    expected_split["SimCLRAugSelf"] = (64, 32)
    assert (model.inv_dims, model.inv_embedding_dims) == expected_split[method]
    if method == "SIE":
        torch.testing.assert_close(e_x[:, :24], model.projector_inv(r_x[:, :48]))
        torch.testing.assert_close(e_x[:, 24:], model.projector_equi(r_x[:, 48:]))
    if method == "SimCLREquiMod":
        torch.testing.assert_close(e_x, torch.cat([model.projector_inv(r_x), model.projector_equi(r_x)], 1))
    if model.predictor is not None:
        inv = model.inv_embedding_dims
        torch.testing.assert_close(features.prediction, model.predictor(e_x[:, inv:], latent))
    if method == "SimCLRAugSelf":
        torch.testing.assert_close(features.augself_prediction, model.augself_head(*features.representations))


@pytest.mark.parametrize("method", ["SIE", "SimCLRAugSelfRotColor"])
def test_online_probes_do_not_reach_the_backbone(method: str) -> None:
    model = build(method)
    batch = make_batch(method)
    model(*batch).loss.backward()
    with_probe = {name: parameter.grad.clone() for name, parameter in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    features = model.encode(*batch[:3])
    ssl = sum(weight * term for weight, term in model.spec.loss(features, model.config).values())
    ssl.backward()
    for name, parameter in model.named_parameters():
        if name.startswith("evaluator."):
            assert parameter.grad is None and with_probe[name].abs().sum() > 0
        else:
            torch.testing.assert_close(with_probe[name], parameter.grad, msg=name)


def test_sie_rotcolor_mlp_predictor_takes_six_latents() -> None:
    """An MLP predictor on [z (6); e_equi] instead of an error
    (docs/differences.md#rotcolor-mlp-predictor)."""
    model = build("SIERotColor", dataclasses.replace(CONFIG, predictor_type="mlp", tf_num_layers=2))
    assert model.predictor.net[0].in_features == 8 + 6
    assert torch.isfinite(model(*make_batch("SIERotColor")).loss)


def test_autocast_step_keeps_float32_loss() -> None:
    model = build("SIE")
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        output = model(*make_batch("SIE"))
    assert output.terms["ssl"].dtype == torch.float32 and torch.isfinite(output.loss)


def test_gather_with_grad_is_identity_in_one_process() -> None:
    tensor = torch.randn(4, 3, requires_grad=True)
    gathered = dist.gather_with_grad(tensor)
    assert gathered is tensor and dist.world_size() == 1 and dist.rank() == 0
    (gathered * 2).sum().backward()
    torch.testing.assert_close(tensor.grad, torch.full((4, 3), 2.0))


def _gather_worker(rank: int, world_size: int, init_file: str, inputs: torch.Tensor, results: dict) -> None:
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        local = inputs.chunk(world_size)[rank].clone().requires_grad_()
        gathered = dist.gather_with_grad(local)
        loss = (gathered**3).sum() + gathered.var(dim=0).sum()
        loss.backward()
        results[rank] = (gathered.detach(), local.grad)
    finally:
        torch.distributed.destroy_process_group()


def test_gather_with_grad_two_processes(tmp_path) -> None:
    """Forward concatenates; backward gives world_size x the full-batch gradient (DDP then averages)."""
    inputs = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    full = inputs.clone().requires_grad_()
    ((full**3).sum() + full.var(dim=0).sum()).backward()
    with multiprocessing.Manager() as manager:
        results = manager.dict()
        multiprocessing.spawn(_gather_worker, args=(2, str(tmp_path / "init"), inputs, results), nprocs=2)
        results = dict(results)
    for rank in range(2):
        gathered, gradient = results[rank]
        torch.testing.assert_close(gathered, inputs)
        torch.testing.assert_close(gradient / 2, full.grad.chunk(2)[rank])
