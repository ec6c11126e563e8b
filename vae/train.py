"""The one training loop, used by ``python -m vae.train`` and by the app's background job.

``train(config)`` is deterministic given ``config.seed`` (on one device and thread count), keeps
the checkpoint with the best validation loss, can resume from its own file, honours a stop flag
between batches, and stops cleanly with a message when the loss turns NaN/inf. Progress goes to an
optional ``callback(event)`` (``vae.events``): a ``StepEvent`` after each batch, an ``EpochEvent``
after each epoch (with train/validation/test metrics, a reconstruction grid and a CPU copy of the
weights as the epoch ended), a ``FrameEvent`` with the film so far after each of its frames
(``vae.film``), an ``EndEvent`` once.

Read top-down: the optimizer and its schedules, one step, then ``train`` and the steps it is made
of (set up, an epoch, the evaluation that keeps the best, the end), the files it writes, and the
command line. A run's settings are a ``vae.config.TrainConfig``.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

from .checkpoint import (
    CheckpointError,
    read_checkpoint,
    read_resume_state,
    save_checkpoint,
    save_resume_state,
    stored_history,
    stored_metrics,
)
from .config import LIMITS, OWN_DATA_VAL_SHARE, SCHEDULES, VAL_SHARE, TrainConfig
from .data import Dataset, DatasetInfo, DataUnavailableError, iterate_batches, to_float, training_indices
from .datasets import COLOR, GRAY, load_dataset, resolve
from .device import PRECISIONS, autocast_dtype, precision_label, resolve_device, trained_on
from .events import EndEvent, EpochEvent, Event, FrameEvent, StepEvent
from .files import rename_new
from .film import Film, FilmRecorder, epoch_one_steps
from .history import EpochRecord, History, Metrics, Scores, StepRecord
from .loss import LossParts, iwae_loss, vae_loss
from .metrics import evaluate
from .model import ARCHS, LATER_FIELDS, ConvVAE, eval_mode
from .settings import settings

FINE_TUNE_SAMPLES = 2  # samples per image in the bundled default's importance-weighted epochs (checkpoints/README.md)
RECON_IMAGES = 10  # the reconstruction grid: the first test image of each label, round the labels again if fewer


@dataclass
class TrainResult:
    status: str  # "finished", "stopped" or "failed"
    message: str
    checkpoint: Path | None
    best: Metrics | None = None  # the kept epoch and its validation/test metrics; None when no epoch completed
    history: History = field(default_factory=History)


# ---------------------------------------------------------------- the optimizer and one step


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with ``config``'s lr and weight decay (plain Adam at 0, as the tutorial trains), with
    its fused kernel: one pass over all parameters per step, faster than the per-tensor loop on a
    CPU with more than one thread (bench/RESULTS.md, 2026-11-24)."""
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """A linear warm-up over the first 25% of steps to ``lr``, then down to lr/1000: in a straight
    line (``linear``, the default) or along a cosine (``onecycle``). Or ``constant``. The straight
    line ended better than the cosine in paired 70-epoch runs (bench/RESULTS.md, 2026-11-25)."""
    if config.schedule == "constant":
        return config.lr
    warm = max(1, int(0.25 * total_steps))
    if step < warm:
        return config.lr * (0.04 + 0.96 * step / warm)
    t = min((step - warm) / max(1, total_steps - warm), 1.0)
    fall = 1 - t if config.schedule == "linear" else 0.5 * (1 + math.cos(math.pi * t))
    return config.lr * (1e-3 + (1 - 1e-3) * fall)


def kl_weight(config: TrainConfig, epoch_progress: float) -> float:
    """beta, ramped linearly from 0 over the first ``kl_warmup_epochs`` (a fractional epoch count)."""
    if config.kl_warmup_epochs <= 0:
        return config.beta
    return config.beta * min(1.0, epoch_progress / config.kl_warmup_epochs)


def train_step(
    model: ConvVAE, optimizer: torch.optim.Optimizer, x: torch.Tensor, beta: float = 1.0,
    autocast: torch.dtype | None = None, iw_samples: int = 1,
) -> tuple[LossParts, bool]:
    """One update on the float batch ``x``: forward (under ``autocast`` when given), loss in fp32
    (mean over the batch; the -ELBO, or with ``iw_samples`` > 1 the importance-weighted bound),
    backward, step. Returns the batch's summed loss parts and whether the update was made: a
    non-finite loss makes none, so the caller can stop with the weights still sound. Shared with
    bench/train_speed.py."""
    with torch.autocast(x.device.type, dtype=autocast, enabled=autocast is not None):  # the losses cast to fp32
        if iw_samples > 1:
            parts = iwae_loss(model, x, iw_samples)
        else:
            logits, mu, logvar = model(x)
            parts = vae_loss(logits, x, mu, logvar, beta=beta)
    finite = bool(torch.isfinite(parts.total))
    if finite:
        optimizer.zero_grad(set_to_none=True)
        (parts.total / len(x)).backward()
        optimizer.step()
    return parts, finite


# ---------------------------------------------------------------- the run


def train(
    config: TrainConfig,
    checkpoint_path: str | Path,
    *,
    stop: threading.Event | None = None,
    callback: Callable[[Event], None] | None = None,
    resume: bool = False,
    data: Dataset | None = None,
    film: bool = True,
) -> TrainResult:
    """Train per ``config``, writing the best model so far to ``checkpoint_path`` after each epoch.

    With ``resume=True`` the run continues from the training state stored in that file (its
    config must match, except ``epochs``, which may grow), and its film from the film stored there.
    ``film`` records the run's film (``vae.film``) into the checkpoint."""
    config.validate()
    data = data or load_dataset(config.data)
    if data.info.key != config.data:
        raise ValueError(f"the run is for the dataset {config.data!r}, not {data.info.key!r}")
    config.check_dataset(data.info)
    run = _set_up(config, Path(checkpoint_path), data, resume=resume, film=film,
                  emit=callback or (lambda event: None), stop=stop or threading.Event())
    status, message = "finished", ""
    for epoch in range(run.start_epoch, config.epochs):
        epoch_start = time.perf_counter()
        status, message, sums, seen = _train_epoch(run, epoch)
        if status != "finished" or seen == 0:
            break
        _evaluate_and_keep_best(run, epoch, epoch_start, sums / seen, seen)
    if run.best is not None and run.autocast is not None:
        _keep_fp32_metrics(run)
    return _end(run, status, message)


@dataclass(frozen=True)
class _Kept:
    """The model a run keeps (a copy of it as its epoch ended), with that epoch's metrics."""

    model: ConvVAE
    epoch: int  # 1-based
    score: float  # what the next epoch must beat: the validation loss, or the test loss without a validation split
    val: Scores | None  # None without a validation split
    test: Scores

    @property
    def metrics(self) -> Metrics:
        return Metrics(epoch=self.epoch, val=self.val, test=self.test)


@dataclass
class _Run:
    """What a run carries from one epoch to the next."""

    config: TrainConfig
    dataset: DatasetInfo
    path: Path
    emit: Callable[[Event], None]
    stop: threading.Event
    device: torch.device
    autocast: torch.dtype | None
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    train_images: torch.Tensor
    val_images: torch.Tensor
    test_images: torch.Tensor
    recon_images: torch.Tensor  # the fixed test images of the reconstruction grid
    model: ConvVAE
    optimizer: torch.optim.Optimizer
    shuffle: torch.Generator
    steps: list[StepRecord]  # the run's history so far, resumed ones' included
    epochs: list[EpochRecord]
    best: _Kept | None  # None until an epoch completes
    recorder: FilmRecorder | None
    start_epoch: int
    owns_file: bool = False  # the model file at path is this run's: it resumed from it, or has written it
    step: int = 0
    train_seconds: float = 0.0  # time in training steps only, so img/s and ETA leave evaluation out
    images_this_run: int = 0

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_images) / self.config.batch_size)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.config.epochs

    @property
    def history(self) -> History:
        return History(steps=tuple(self.steps), epochs=tuple(self.epochs))


def _set_up(config: TrainConfig, path: Path, data: Dataset, *, resume: bool, film: bool,
            emit: Callable[[Event], None], stop: threading.Event) -> _Run:
    """The data split onto the device, a seeded model and optimizer (or those of the run being
    resumed), and the film recorder, whose first frame is the untrained model."""
    device = resolve_device(config.device)
    train_idx, val_idx = training_indices(config, len(data.train_images))
    torch.manual_seed(config.seed)
    model = ConvVAE(config.model_config()).to(device)
    run = _Run(
        config=config, dataset=data.info, path=path, emit=emit, stop=stop, device=device,
        autocast=autocast_dtype(config.precision, device), train_idx=train_idx, val_idx=val_idx,
        train_images=data.train_images[train_idx].to(device), val_images=data.train_images[val_idx].to(device),
        test_images=data.test_images.to(device),
        recon_images=data.test_images[_first_of_each_label(data.test_labels)].to(device),
        model=model, optimizer=make_optimizer(model, config), shuffle=torch.Generator().manual_seed(config.seed),
        steps=[], epochs=[], best=None, recorder=None, start_epoch=0,
    )
    saved_film = None
    if resume:
        run.start_epoch, history, run.best, saved_film = _restore(path, config, model, run.optimizer, run.shuffle)
        run.steps, run.epochs = list(history.steps), list(history.epochs)
        run.owns_file = True
    run.step = run.start_epoch * run.steps_per_epoch
    if film:
        run.recorder = FilmRecorder(data.test_images, data.test_labels, config.latent_dim, device, saved_film)
        if run.start_epoch == 0:
            _take_frame(run, 0.0)
    return run


def _train_epoch(run: _Run, epoch: int) -> tuple[str, str, torch.Tensor, int]:
    """One pass over the training images (0-based ``epoch``): (status, message, the summed loss
    parts per image, images seen). It ends early, "stopped", when the stop flag is set, or
    "failed" when the loss is not finite."""
    config, model, optimizer = run.config, run.model, run.optimizer
    model.train()
    sums = torch.zeros(3, dtype=torch.float64)
    seen = 0
    epoch_one_frames = epoch_one_steps(run.steps_per_epoch) if epoch == 0 else {}
    for batch in iterate_batches(run.train_images, config.batch_size, run.shuffle):
        if run.stop.is_set():
            return "stopped", f"Stopped by request during epoch {epoch + 1}.", sums, seen
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, run.step, run.total_steps)
        step_start = time.perf_counter()
        x = to_float(batch, run.device)
        parts, updated = train_step(model, optimizer, x, beta=kl_weight(config, epoch + seen / len(run.train_images)),
                                    autocast=run.autocast, iw_samples=config.iw_samples_at(epoch))
        if not updated:
            return "failed", (f"The loss became {parts.total.item()} at epoch {epoch + 1}, step {run.step + 1}; "
                              "training stopped. Try a lower learning rate."), sums, seen
        run.step += 1
        seen += len(x)
        run.images_this_run += len(x)
        per_image = (torch.stack([p.detach() for p in parts]).double().cpu() / len(x))
        sums += per_image * len(x)
        loss, bce, kl = per_image.tolist()
        run.train_seconds += time.perf_counter() - step_start
        run.steps.append(StepRecord(step=run.step, epoch=epoch + seen / len(run.train_images),
                                    loss=loss, bce=bce, kl=kl))
        rate = run.images_this_run / max(run.train_seconds, 1e-9)
        remaining = (run.total_steps - run.step) * config.batch_size / max(rate, 1e-9)
        run.emit(StepEvent(epoch=epoch + 1, epochs=config.epochs, step=run.step, total_steps=run.total_steps,
                           loss=loss, bce=bce, kl=kl, img_per_s=rate, eta_s=remaining,
                           lr=optimizer.param_groups[0]["lr"]))
        if run.recorder is not None and run.step in epoch_one_frames:
            _take_frame(run, epoch_one_frames[run.step])
    return "finished", "", sums, seen


def _evaluate_and_keep_best(run: _Run, epoch: int, epoch_start: float, train_means: torch.Tensor, seen: int) -> None:
    """The epoch's validation and test curves (in the training precision); the model is kept when
    its validation loss is the best so far; then its film frame, the files and the epoch's event."""
    config, model = run.config, run.model
    val = evaluate(model, run.val_images, autocast=run.autocast) if len(run.val_images) else None
    test = evaluate(model, run.test_images, autocast=run.autocast)
    loss, bce, kl = train_means.tolist()
    seconds = time.perf_counter() - epoch_start
    record = EpochRecord(epoch=epoch + 1, seconds=seconds, train_seconds=run.train_seconds, img_per_s=seen / seconds,
                         train=Scores(loss=loss, bce=bce, kl=kl), val=val, test=test)
    run.epochs.append(record)
    score = (val or test).loss
    # The importance-weighted epochs trade -ELBO for -log p(x), so validation's -ELBO cannot
    # judge them: each one is kept, the last being the fine-tune's result.
    improved = run.best is None or score < run.best.score or config.iw_samples_at(epoch) > 1
    if improved:
        run.best = _Kept(model=copy.deepcopy(model), epoch=epoch + 1, score=score, val=val, test=test)
    if run.recorder is not None:
        _take_frame(run, float(epoch + 1), keep_epoch=run.best.epoch)
    weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}  # a copy: training goes on
    train_state = {"epoch": epoch + 1, "model": weights, "optimizer": run.optimizer.state_dict(),
                   "shuffle_rng": run.shuffle.get_state(), "torch_rng": torch.get_rng_state()}
    _write(run, run.history, train_state)
    run.emit(EpochEvent(epoch=record.epoch, epochs=config.epochs, seconds=record.seconds,
                        train_seconds=run.train_seconds, img_per_s=record.img_per_s, train=record.train,
                        val=record.val, test=record.test, improved=improved,
                        reconstructions=_reconstruction_grid(model, run.recon_images), weights=weights))


def _keep_fp32_metrics(run: _Run) -> None:
    """The per-epoch metrics were taken in the training precision, which is faster; the kept
    model's are taken again in fp32, so that its file holds the numbers ``vae.eval`` prints."""
    model = run.best.model
    run.best = replace(run.best, val=evaluate(model, run.val_images) if len(run.val_images) else None,
                       test=evaluate(model, run.test_images))
    completed_steps = len(run.epochs) * run.steps_per_epoch  # as the file had it: no partial epoch
    _write(run, History(steps=tuple(run.steps[:completed_steps]), epochs=tuple(run.epochs)))


def _end(run: _Run, status: str, message: str) -> TrainResult:
    """The run's result and its end event, with a message that says what is kept."""
    best = run.best.metrics if run.best is not None else None
    if best is None:
        message = f"{message} No epoch was completed, so no checkpoint was written.".lstrip()
    elif status == "finished":
        message = f"Finished {run.config.epochs} epochs; best validation loss at epoch {best.epoch}."
    else:
        message += f" The best checkpoint (epoch {best.epoch}) is kept."
    kept = run.path if best is not None else None
    run.emit(EndEvent(status, message, str(kept) if kept is not None else None, best))
    return TrainResult(status, message, kept, best, run.history)


def _first_of_each_label(labels: torch.Tensor) -> torch.Tensor:
    """RECON_IMAGES test indices: the first image of each label, then each label's second, ..."""
    by_label = [(labels == label).nonzero()[:, 0] for label in labels.unique()]
    rounds = (indices[n] for n in range(len(labels)) for indices in by_label if n < len(indices))
    return torch.stack(list(itertools.islice(rounds, RECON_IMAGES)))


@torch.no_grad()
def _reconstruction_grid(model: ConvVAE, images: torch.Tensor) -> np.ndarray:
    """[2, n, C, H, W] floats: the fixed test images and their reconstructions (decoded means)."""
    with eval_mode(model):
        x = to_float(images, images.device)
        recon = model.decode(model.encode(x)[0])
    return torch.stack([x, recon.float()]).cpu().numpy()


def _take_frame(run: _Run, epoch: float, keep_epoch: int | None = None) -> None:
    """A film frame of the model now, thinned to its size bound, and sent to the run's watchers."""
    run.recorder.record(run.model, epoch)
    run.recorder.thin(keep_epoch)
    run.emit(FrameEvent(run.recorder.film()))


# ---------------------------------------------------------------- files


def _write(run: _Run, history: History, train_state: dict | None = None) -> None:
    """The kept model's file with the film so far, and the resume sidecar when ``train_state`` is given.
    The run's first write creates its file, written aside and renamed only to a free name: a model
    that took the name since the run began (another run, a command) is left as it is, and the run
    fails with FileExistsError; later writes replace the run's own file."""
    config, best = run.config, run.best
    film = run.recorder.film() if run.recorder is not None else None
    extra = {"film": film.to_state()} if film is not None else {}
    target = run.path if run.owns_file else run.path.with_name(f".{run.path.name}.new.tmp")
    save_checkpoint(
        target, best.model,
        train_config=asdict(config),
        metrics=best.metrics.to_dict(),
        history=history.to_dict(),
        split={"seed": config.seed, "val_size": len(run.val_idx), "train_size": len(run.train_idx)},
        trained_on=trained_on(config.device, config.precision),
        dataset=run.dataset.to_dict(),
        **extra,
    )
    if not run.owns_file:
        rename_new(target, run.path)
        run.owns_file = True
    if train_state is not None:
        save_resume_state(run.path, {**train_state, **extra})


def _restore(path: Path, config: TrainConfig, model: ConvVAE, optimizer: torch.optim.Optimizer,
             shuffle: torch.Generator) -> tuple[int, History, _Kept, Film | None]:
    """The state ``path``'s run stopped in, loaded into ``model``, ``optimizer`` and ``shuffle``:
    (epochs done, history, the kept model, film). A run with other settings is refused, naming them."""
    payload = read_checkpoint(path)
    saved = {**LATER_FIELDS, **payload.get("train_config", {})}
    state = read_resume_state(path)
    settings = {f.name: (saved.get(f.name), getattr(config, f.name)) for f in fields(TrainConfig)
                if f.name not in ("epochs", "device")}
    differing = [(name, had, asked) for name, (had, asked) in settings.items() if had != asked]
    if differing:
        what = ", ".join(f"{name} (it had {had!r}, not {asked!r})" for name, had, asked in differing)
        raise CheckpointError(
            f"Cannot resume {Path(path).name}: its run differs in {what}. Pass its settings to continue it."
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    shuffle.set_state(state["shuffle_rng"])
    torch.set_rng_state(state["torch_rng"])
    metrics = stored_metrics(payload, Path(path).name)
    if metrics.epoch is None or metrics.test is None:
        raise CheckpointError(f"Cannot resume {Path(path).name}: it does not say which epoch it kept.")
    best_model = copy.deepcopy(model)
    best_model.load_state_dict(payload["state_dict"])
    best = _Kept(model=best_model, epoch=metrics.epoch, score=(metrics.val or metrics.test).loss,
                 val=metrics.val, test=metrics.test)
    film = Film.from_state(state["film"], config.latent_dim) if "film" in state else None
    return state["epoch"], stored_history(payload, Path(path).name), best, film


# ---------------------------------------------------------------- command line


def _parse_args(argv=None) -> tuple[TrainConfig, argparse.Namespace]:
    defaults = TrainConfig()
    choices = {"arch": ARCHS, "schedule": SCHEDULES, "precision": PRECISIONS}
    p = argparse.ArgumentParser(
        prog="python -m vae.train",
        description="Train a convolutional VAE on MNIST, scikit-learn's digits or your own images, "
                    "and save the best checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--name", default="model", help="checkpoint name: checkpoints/NAME.pt")
    p.add_argument("--out", type=Path, help="checkpoint path (overrides --name)")
    p.add_argument("--preset", choices=("default", "tutorial"), default="default",
                   help="'tutorial' is the seed article's model and recipe; flags below override it")
    p.add_argument("--resume", action="store_true", help="continue the run stored in the checkpoint")
    p.add_argument("--no-film", dest="film", action="store_false",
                   help="do not record the film of the latent space forming (vae/film.py)")
    p.add_argument("--autoencoder", dest="variational", action="store_const", const=False, default=argparse.SUPPRESS,
                   help="train a plain autoencoder instead: z = mu, no sampling, no KL term")
    p.add_argument("--data", default="mnist",
                   help="mnist, digits (scikit-learn's), an added dataset's key, or a folder or .zip of images "
                        "(one subfolder per label, or none); a folder named mnist is ./mnist")
    p.add_argument("--color", action="store_true",
                   help="read your images in colour, RGB 32x32, instead of grayscale 28x28")
    p.add_argument("--val-size", type=_count_or_share, default=argparse.SUPPRESS,
                   help=f"in {LIMITS['val_size']}; default: {defaults.val_size} on MNIST, {OWN_DATA_VAL_SHARE} on "
                        f"other datasets: validation images, a count or a share of the training split in {VAL_SHARE}")
    given_apart = {"variational", "data", "image_channels", "image_size", "val_size"}  # flags above, or from --data
    for f in fields(TrainConfig):
        if f.name in given_apart:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = {"int": int, "float": float, "str": str}.get(str(f.type).split(" ")[0], int)
        extra = {"choices": choices[f.name]} if f.name in choices else {}
        bounds = f"in {LIMITS[f.name]}; " if f.name in LIMITS else ""  # validate() checks them
        p.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=f"{bounds}default: {getattr(defaults, f.name)}",
                       **extra)
    args = p.parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if hasattr(args, f.name) and f.name != "data"}  # flags given; --data is read in main
    config = TrainConfig.tutorial(**overrides) if args.preset == "tutorial" else TrainConfig(**overrides)
    return config, args


def _count_or_share(text: str) -> int | float:
    """--val-size: "1000" is a count, "0.1" a share of the training split."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def _dataset_for(config: TrainConfig, args: argparse.Namespace) -> tuple[TrainConfig, Dataset]:
    """The dataset --data names (a folder or zip read and kept first, with a progress bar), and the
    config with its key, its image form and, off MNIST, a validation share that suits a small set."""
    from tqdm import tqdm

    form = COLOR if args.color else GRAY
    with tqdm(unit="image", desc="reading images", dynamic_ncols=True, leave=False, delay=0.5) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        data = resolve(args.data, form, progress=progress)
    info = data.info  # in the form asked for: resolve refuses --color for a grayscale dataset
    val_size = config.val_size if hasattr(args, "val_size") or info.key == "mnist" else OWN_DATA_VAL_SHARE
    return replace(config, data=info.key, image_channels=info.channels, image_size=info.size,
                   val_size=val_size), data


def main(argv=None) -> int:
    from tqdm import tqdm

    config, args = _parse_args(argv)
    try:
        config, data = _dataset_for(config, args)
        config.validate()
        config.check_dataset(data.info)
        device = resolve_device(config.device)
    except (ValueError, DataUnavailableError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out or settings().checkpoint_dir / f"{args.name}.pt"
    if out.exists() and not args.resume:
        print(f"error: {out} exists; pass --resume to continue it, or choose another --name.", file=sys.stderr)
        return 2
    kind = "VAE" if config.variational else "autoencoder"
    print(f"Training {config.arch} {kind} (latent {config.latent_dim}) on {data.info.describe()}, on {device} "
          f"({precision_label(config.precision, device)}) -> {out}")
    bar = None

    def on_event(event: Event) -> None:
        nonlocal bar
        if isinstance(event, StepEvent):
            if bar is None:
                bar = tqdm(total=event.total_steps, initial=event.step - 1, unit="batch", dynamic_ncols=True)
            bar.update(1)
            bar.set_description(f"epoch {event.epoch}/{event.epochs}")
            bar.set_postfix(loss=f"{event.loss:.1f}", img_s=f"{event.img_per_s:.0f}", refresh=False)
        elif isinstance(event, EpochEvent):
            val = f"{event.val.loss:.2f}" if event.val is not None else "-"  # no validation split
            test = event.test
            (bar.write if bar else print)(
                f"epoch {event.epoch:3d}  train {event.train.loss:.2f}  val {val}  "
                f"test {test.loss:.2f} (bce {test.bce:.2f} + kl {test.kl:.2f})  "
                f"{event.seconds:.1f}s  {event.img_per_s:.0f} img/s" + ("  *" if event.improved else "")
            )

    stop = threading.Event()
    start = time.perf_counter()
    try:
        result = train(config, out, stop=stop, callback=on_event, resume=args.resume, data=data, film=args.film)
    except KeyboardInterrupt:
        print("\nInterrupted; the last completed epoch's best checkpoint is kept.", file=sys.stderr)
        return 130
    except (CheckpointError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    print(result.message)
    if result.best is not None:
        t = result.best.test
        print(f"Best epoch {result.best.epoch}: test -ELBO {t.loss:.2f} nats "
              f"(bce {t.bce:.2f} + kl {t.kl:.2f}); {time.perf_counter() - start:.0f}s; saved {out}")
    return 0 if result.status != "failed" else 1


if __name__ == "__main__":
    sys.exit(main())
