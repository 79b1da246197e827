"""The pretraining loop: one process, torchrun, or one srun task per GPU (see ``sie.dist``).

A run resumes automatically from its checkpoint (kept outside the workflow's declared outputs) and
continues the same trajectory: the data order depends only on (seed, epoch, object), and the model,
optimiser, gradient scaler, step counters and random states are restored. Only a checkpoint of the same
run is resumed (``sie.training.resume``: same identity, fingerprinted); another is put aside. One process
owns a checkpoint (an exclusive lock beside it), and a job whose Snakemake process is gone stops
(``sie.ownership``). SIGUSR1/SIGTERM make every rank finish its step, save a checkpoint and exit with
status 143 so the job can be requeued.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sie import dist, ownership
from sie.data.fingerprint import dataset_fingerprint
from sie.data.latents import COLOUR_LATENTS, HUE_COLUMNS, HUE_FACTORS
from sie.data.layout import label_count
from sie.data.pairs import (
    PairSampler,
    ViewPairDataset,
    load_pair_dataset,
    make_loader,
    normalization_constants,
    prepare_images,
)
from sie.data.split import check_batch_fits
from sie.io import ensure_writable, read_json
from sie.models.methods import SSLModel, build_model, get_method
from sie.paths import CARD_FILE, STATISTICS_FILE
from sie.training import checkpoint, resume
from sie.training.config import RunSpec
from sie.training.log import RunLog
from sie.training.outputs import write_outputs

STOP_EXIT_STATUS = 143


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message gives the step and every term."""


class StopRequested(Exception):
    """A stop signal arrived; the checkpoint is saved. Carries the signal number."""


@dataclass
class Position:
    """Where training stands: epoch, completed steps in that epoch, completed steps overall."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0


@dataclass
class Run:
    """Everything one training run holds."""

    spec: RunSpec
    context: dist.LaunchContext
    device: torch.device
    model: SSLModel
    trained: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    sampler: PairSampler
    dataset: ViewPairDataset
    mean: list[float]
    std: list[float]
    checkpoint_path: Path
    autocast_dtype: torch.dtype | None
    identity: dict[str, Any] = field(default_factory=dict)
    position: Position = field(default_factory=Position)
    last: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        """The hash of this run's identity and epochs (see ``sie.training.resume``)."""
        return resume.fingerprint(self.identity, self.spec.training.epochs)


class StopSignals:
    """Turns SIGUSR1/SIGTERM into a flag checked between steps (Slurm's warning before the time limit)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.previous = {
            number: signal.signal(number, self._handle) for number in (signal.SIGUSR1, signal.SIGTERM)
        }

    def _handle(self, number: int, frame: Any) -> None:
        self.received = number

    def restore(self) -> None:
        """Put the previous handlers back."""
        for number, handler in self.previous.items():
            signal.signal(number, handler)


def pretrain(
    spec: RunSpec, dataset_dir: Path, output_dir: Path, checkpoint_path: Path, threads: int | None = None
) -> dict[str, Any]:
    """Train one (variant, method, seed); returns the summary (also written to summary.json)."""
    context = dist.launch_context()
    device = dist.select_device(context, spec.training.device)
    if spec.training.batch_size % context.world_size:
        raise ValueError(
            f"training.batch_size {spec.training.batch_size} is not divisible by the world size "
            f"{context.world_size} (processes)"
        )
    if threads:
        torch.set_num_threads(threads)
    dist.initialize(context, device)
    signals = StopSignals()
    try:
        check = "write its outputs"
        on_rank_zero(context, device, lambda: ensure_writable(output_dir, checkpoint_path.parent), check)
        with owned_checkpoint(checkpoint_path, context, device):
            ownership.watch_workflow()
            run = build_run(spec, context, device, dataset_dir, checkpoint_path)
            return train(run, output_dir, signals)
    finally:
        signals.restore()
        dist.shutdown()


@contextlib.contextmanager
def owned_checkpoint(
    checkpoint_path: Path, context: dist.LaunchContext, device: torch.device
) -> Iterator[None]:
    """Rank 0 holds the checkpoint's lock for the block; every rank stops if it cannot be had."""
    with contextlib.ExitStack() as stack:
        lock = ownership.exclusive_lock(lock_path(checkpoint_path), f"the checkpoint {checkpoint_path}")
        on_rank_zero(context, device, lambda: stack.enter_context(lock), "lock the checkpoint")
        yield


def on_rank_zero(context: dist.LaunchContext, device: torch.device, action, what: str) -> float:
    """Run ``action`` on rank 0 (its float result, 0.0 if none, is shared with every rank); if it
    fails there, every rank stops instead of waiting for rank 0 until the process-group timeout."""
    failure: BaseException | None = None
    result = 0.0
    if context.rank == 0:
        try:
            result = float(action() or 0.0)
        except Exception as error:
            failure = error
    shared = dist.all_reduce_max(torch.tensor([float(failure is not None), result], device=device))
    if failure is not None:
        raise failure
    if bool(shared[0]):
        raise RuntimeError(f"rank 0 could not {what} (its error says why); this rank stops too")
    return float(shared[1])


def lock_path(checkpoint_path: Path) -> Path:
    """The lock file of a checkpoint (beside it; it stays, the lock itself ends with its holder)."""
    return checkpoint_path.with_name(checkpoint_path.name + ".lock")


def build_run(
    spec: RunSpec, context: dist.LaunchContext, device: torch.device, dataset_dir: Path, checkpoint_path: Path
) -> Run:
    """Data, model, optimiser and sampler of a run, restored from its checkpoint when there is one."""
    method = get_method(spec.method)
    training = spec.training
    torch.use_deterministic_algorithms(training.deterministic, warn_only=True)
    torch.backends.cudnn.benchmark = not training.deterministic
    dataset = load_pair_dataset(dataset_dir, "train", method.latent, spec.seed, training.reader)
    check_latent_varies(dataset, method.name, method.latent, dataset_dir)
    card = read_json(dataset_dir / CARD_FILE)
    mean, std = normalization_constants(training.normalization, read_json(dataset_dir / STATISTICS_FILE))
    torch.manual_seed(spec.seed)
    model = build_model(spec.method, model_config(spec, label_count(card)))
    model = dist.convert_batch_norm(model, device).to(device)
    if training.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=training.lr, weight_decay=training.weight_decay)
    autocast_dtype = resolve_precision(training.amp, device)
    identity = resume.run_identity(spec, precision_name(autocast_dtype), dataset_fingerprint(dataset_dir))
    scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype == torch.float16)
    check_batch_fits(
        training.batch_size,
        len(dataset),
        "training.batch_size",
        spec.variant,
        "give the variant more objects",
    )
    sampler = PairSampler(len(dataset), training.batch_size, context.rank, context.world_size, spec.seed)
    trained: nn.Module = model
    if context.world_size > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        trained = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    run = Run(
        spec,
        context,
        device,
        model,
        trained,
        optimizer,
        scaler,
        sampler,
        dataset,
        mean,
        std,
        checkpoint_path,
        autocast_dtype,
        identity,
    )
    # Rank 0 decides and says whether to restore: on a shared file system another node may still see
    # the checkpoint as it was before rank 0 moved it.
    restoring = on_rank_zero(
        context, device, lambda: choose_checkpoint(run) or checkpoint_path.exists(), "choose the checkpoint"
    )
    if restoring:
        if not checkpoint_path.exists():
            raise RuntimeError(
                f"{checkpoint_path}: rank {context.rank} does not see the checkpoint rank 0 resumes "
                "(a shared file system's cache?); run again"
            )
        restore(run)
    return run


def choose_checkpoint(run: Run) -> None:
    """Rank 0: keep the checkpoint in place only if this run may resume it (``resume.decide``);
    otherwise put it aside; bring back a superseded checkpoint of exactly this run when there is one."""
    path = run.checkpoint_path
    if path.exists():
        state = checkpoint.load(path)
        stored = {
            "identity": state.get("identity"),
            "epochs": state.get("epochs"),
            "global_step": state.get("position", {}).get("global_step", 0),
        }
        decision = resume.decide(stored, run.identity, run.spec.training.epochs, run.sampler.steps_per_epoch)
        if decision.resume:
            if decision.reason != "same settings":
                run.notes.append(f"resuming {path}: {decision.reason}")
            return
        stored_fingerprint = resume.fingerprint(stored["identity"] or {}, stored["epochs"] or 0)
        kept = resume.put_aside(path, stored_fingerprint, stored["global_step"])
        run.notes.append(
            f"not resuming {path}: {decision.reason}; it is kept as {kept}; training starts over"
        )
    taken = resume.take_back(path, run.fingerprint)
    if taken is not None:
        run.notes.append(f"took back {taken}, the checkpoint of exactly these settings")


def precision_name(autocast_dtype: torch.dtype | None) -> str:
    """The precision a run computes in: fp32, bf16 or fp16."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[autocast_dtype]


def model_config(spec: RunSpec, classes: int):
    """The ModelConfig of a run; the classifiers' outputs (``classes``) always come from the dataset's
    labels (``sie.data.layout.label_count``)."""
    from sie.models.methods import ModelConfig

    return ModelConfig(**{**spec.model, "num_classes": classes})


def check_latent_varies(dataset: ViewPairDataset, method: str, latent: str, dataset_dir: Path) -> None:
    """A RotColor method needs the floor and light hues to vary in the dataset."""
    if latent not in COLOUR_LATENTS:
        return
    hues = dataset.latents[:, list(HUE_COLUMNS)]
    frozen = [name for column, name in enumerate(HUE_FACTORS) if hues[:, column].std() == 0]
    if frozen:
        raise ValueError(
            f"method {method} conditions on colour changes, but {', '.join(frozen)} never varies in "
            f"{dataset_dir} (a rotation-only variant?): use a method with the rotation latent"
        )


def resolve_precision(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: 'auto' is bf16 on GPUs that support it and full precision on CPUs."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def restore(run: Run) -> None:
    """Load the run's checkpoint (strictly) and continue where it stopped."""
    state = checkpoint.load(run.checkpoint_path)
    differences = resume.identity_differences(state.get("identity") or {}, run.identity)
    if differences:  # rank 0 chose this checkpoint; another rank may see another file (shared FS)
        raise ValueError(f"{run.checkpoint_path}: checkpoint of another run ({'; '.join(differences)})")
    checkpoint.load_state_strict(run.model, state["model"], run.checkpoint_path)
    run.optimizer.load_state_dict(state["optimizer"])
    run.scaler.load_state_dict(state["scaler"])
    checkpoint.restore_rng_state(state["rng"], run.device)
    run.position = Position(**state["position"])


def save_checkpoint(run: Run) -> None:
    """Rank 0 writes the resumable state (atomically); the other ranks hold identical weights."""
    if run.context.rank != 0:
        return
    checkpoint.save(
        run.checkpoint_path,
        {
            "format": checkpoint.CHECKPOINT_FORMAT,
            "identity": run.identity,
            "epochs": run.spec.training.epochs,
            "fingerprint": run.fingerprint,
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scaler": run.scaler.state_dict(),
            "rng": checkpoint.rng_state(run.device),
            "position": vars(run.position).copy(),
        },
    )


def learning_rate(run: Run, step: int) -> float:
    """Linear warm-up, then constant or cosine decay to zero."""
    training = run.spec.training
    total = training.epochs * run.sampler.steps_per_epoch
    warmup = int(training.warmup_epochs * run.sampler.steps_per_epoch)
    if step < warmup:
        return training.lr * (step + 1) / warmup
    if training.schedule == "cosine":
        progress = (step - warmup) / max(1, total - warmup)
        return training.lr * 0.5 * (1 + math.cos(math.pi * progress))
    return training.lr


def train(run: Run, output_dir: Path, signals: StopSignals) -> dict[str, Any]:
    """The epoch loop; checkpoints each epoch and every ``checkpoint_minutes``."""
    training, position = run.spec.training, run.position
    total_steps = training.epochs * run.sampler.steps_per_epoch
    label = f"pretrain {run.spec.variant}/{run.spec.method}/seed{run.spec.seed}"
    log = RunLog(output_dir, label, total_steps, position.global_step, enabled=run.context.rank == 0)
    for note in run.notes:
        log.message(note)
    if position.global_step:
        log.message(
            f"resumed from {run.checkpoint_path} at epoch {position.epoch + 1}, step "
            f"{position.step_in_epoch} of the epoch ({position.global_step} steps done)"
        )
    started = time.perf_counter()
    try:
        while position.epoch < training.epochs:
            run_epoch(run, log, signals)
            position.epoch, position.step_in_epoch = position.epoch + 1, 0
            save_checkpoint(run)
    except StopRequested as stop:
        save_checkpoint(run)
        if dist.is_distributed():
            torch.distributed.barrier()  # no rank exits (and gets rank 0 killed) before the save
        log.message(
            f"stopped by signal {stop.args[0]} after {position.global_step} steps; checkpoint saved to "
            f"{run.checkpoint_path}; run the same command again to resume"
        )
        log.close()
        sys.exit(STOP_EXIT_STATUS)
    wall = time.perf_counter() - started
    summary = write_outputs(run, output_dir, wall) if run.context.rank == 0 else {}
    log.close()
    if dist.is_distributed():
        torch.distributed.barrier()
    return summary


def run_epoch(run: Run, log: RunLog, signals: StopSignals) -> None:
    """One epoch from the current position."""
    position, training = run.position, run.spec.training
    run.sampler.set_epoch(position.epoch)
    run.sampler.set_start_step(position.step_in_epoch)
    loader = make_loader(run.dataset, run.sampler, training.workers, pin_memory=run.device.type == "cuda")
    run.trained.train()
    last_checkpoint = last_log = time.perf_counter()
    steps_since_log = 0
    for batch in loader:
        output = training_step(run, batch)
        position.step_in_epoch += 1
        position.global_step += 1
        steps_since_log += 1
        stop, finite = step_flags(run, signals, output.loss)
        if not finite:
            raise_non_finite(run, output)
        if position.global_step % training.log_every_steps == 0 or stop:
            now = time.perf_counter()
            images = 2 * training.batch_size * steps_since_log / (now - last_log)
            record(run, log, output, images)
            last_log, steps_since_log = now, 0
        if stop:
            raise StopRequested(signals.received or "from another rank")
        if time.perf_counter() - last_checkpoint >= 60 * training.checkpoint_minutes:
            save_checkpoint(run)
            last_checkpoint = time.perf_counter()


def training_step(run: Run, batch: tuple[torch.Tensor, ...]):
    """Normalise and resize the views on the device, forward (under autocast when enabled), backward,
    optimiser step."""
    first, second, latent, labels = (tensor.to(run.device, non_blocking=True) for tensor in batch)
    training = run.spec.training
    memory_format = torch.channels_last if training.channels_last else torch.contiguous_format
    first, second = (
        prepare_images(images, run.mean, run.std, training.resolution).contiguous(memory_format=memory_format)
        for images in (first, second)
    )
    for group in run.optimizer.param_groups:
        group["lr"] = learning_rate(run, run.position.global_step)
    with torch.autocast(
        run.device.type, dtype=run.autocast_dtype or torch.float32, enabled=run.autocast_dtype is not None
    ):
        output = run.trained(first, second, latent, labels)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(output.loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    return output


def step_flags(run: Run, signals: StopSignals, loss: torch.Tensor) -> tuple[bool, bool]:
    """(stop requested on any rank, loss finite on every rank), agreed by all ranks."""
    flags = torch.tensor(
        [float(signals.received is not None), float(not torch.isfinite(loss.detach()))], device=run.device
    )
    flags = dist.all_reduce_max(flags)
    return bool(flags[0]), not bool(flags[1])


def reduced_scalars(run: Run, output) -> dict[str, float]:
    """Loss terms and probe metrics averaged over ranks, plus the learning rate."""
    names = [f"loss/{name}" for name in output.terms] + [f"probe/{name}" for name in output.metrics]
    values = torch.stack([value.float() for value in [*output.terms.values(), *output.metrics.values()]])
    values = dist.all_reduce_mean(values).tolist()
    scalars = dict(zip(names, values, strict=True))
    scalars["train/lr"] = run.optimizer.param_groups[0]["lr"]
    return scalars


def record(run: Run, log: RunLog, output, images_per_second: float) -> None:
    """Log the current step (every rank takes part in the reduction; rank 0 writes)."""
    scalars = reduced_scalars(run, output)
    scalars["train/images_per_second"] = images_per_second
    scalars["train/epoch"] = run.position.epoch + run.position.step_in_epoch / run.sampler.steps_per_epoch
    if run.device.type == "cuda":
        scalars["train/gpu_memory_gb"] = torch.cuda.max_memory_allocated(run.device) / 2**30
    run.last = scalars
    log.record(run.position.global_step, scalars, {"epoch": run.position.epoch})
    log.progress(
        run.position.global_step,
        run.position.epoch,
        run.spec.training.epochs,
        scalars["loss/ssl"] + scalars["loss/probe"],
        images_per_second,
    )


def raise_non_finite(run: Run, output) -> None:
    """Stop the run naming the step and every loss term (no checkpoint is written)."""
    terms = ", ".join(f"{name}={value.item():.6g}" for name, value in output.terms.items())
    raise NonFiniteLossError(
        f"non-finite loss at step {run.position.global_step} (epoch {run.position.epoch + 1}) "
        f"of {run.spec.method}: {terms}; the last checkpoint is kept at {run.checkpoint_path}"
    )
