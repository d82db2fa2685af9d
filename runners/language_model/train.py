"""The language-model family's training loop, one for every runner (as torchvision's references serve
every model of a task): batchified streams, truncated BPTT (fixed or variable length), gradient clipping,
SGD or Adam with an epoch or plateau schedule, perplexity on the full validation and test sets with the
recurrent state carried across segments, checkpoints and exact resume.

A paper's runner builds its network from the config and calls ``fit(config, run, model)``.
"""

import copy
import functools
import math

import torch
import torch.nn.functional as F

from kb.errors import BadInput, KBError
from runners.common.figures import plot_per_epoch
from runners.language_model.data import Corpus, batchify, load, record_dataset


def map_state(fn, state):
    """``fn`` applied to every tensor of a recurrent state (any nesting of tuples and lists; None stays
    None): ``detach`` cuts BPTT at a segment boundary, ``.to(device)`` places a resumed state."""
    if isinstance(state, torch.Tensor):
        return fn(state)
    if isinstance(state, (tuple, list)):
        return type(state)(map_state(fn, s) for s in state)
    return state


def segment_lengths(config, total: int, seed: int, epoch: int) -> list[int]:
    """The BPTT segment lengths of one epoch over streams of ``total`` predictions.

    Fixed: ``bptt`` each, the last one shorter. ``variable_bptt`` (AWD-LSTM, arXiv 1708.02182 Sec. 4.1):
    a base of ``bptt`` with p = 0.95 else ``bptt / 2``, then a length drawn from N(base, 5), at least 5;
    drawn from a generator seeded by (seed, epoch), so a resumed epoch repeats them.
    """
    if not config.variable_bptt:
        return [min(config.bptt, total - start) for start in range(0, total, config.bptt)]
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    lengths, done = [], 0
    while done < total:
        base = config.bptt if torch.rand((), generator=generator) < 0.95 else config.bptt / 2
        length = max(5, int(base + 5 * torch.randn((), generator=generator)))
        lengths.append(min(length, total - done))
        done += lengths[-1]
    return lengths


def learning_rate(config, epoch: int, plateau_lr: float) -> float:
    """The epoch's rate: the ``epoch`` schedule's lr * lr_decay ** (epochs past ``decay_start``), or the
    rate the ``plateau`` schedule has reached (``plateau_lr``, kept in the checkpoint)."""
    if config.schedule == "plateau":
        return plateau_lr
    return config.lr * config.lr_decay ** max(0, epoch + 1 - config.decay_start)


def make_optimizer(config, model: torch.nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)


def sequence_loss(output: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of (B, T, V) scores against (B, T) next tokens. The scores may be logits or already
    normalised log-probabilities (a pointer-sentinel mixture): log_softmax leaves log-probabilities as they
    are, since their logsumexp is log 1 = 0."""
    return F.cross_entropy(output.reshape(-1, output.shape[-1]).float(), targets.reshape(-1), reduction=reduction)


@torch.no_grad()
def perplexity(model: torch.nn.Module, streams: torch.Tensor, bptt: int) -> float:
    """exp(mean negative log-likelihood) of every next token of ``streams`` (B, T), read in segments of
    ``bptt`` with the state carried from one segment to the next, as the papers evaluate (each stream
    starts from a zero state; B = 1 reads the text as one sequence)."""
    model.eval()
    state, total = None, 0.0
    for start in range(0, streams.shape[1] - 1, bptt):
        inputs = streams[:, start:start + bptt]
        targets = streams[:, start + 1:start + 1 + bptt]
        output, state = model(inputs[:, :targets.shape[1]], state)
        total += sequence_loss(output, targets, reduction="sum").item()
    return math.exp(total / (streams.shape[0] * (streams.shape[1] - 1)))


def fit(config, run, model: torch.nn.Module, corpus: Corpus | None = None) -> dict[str, float]:
    """Train ``model`` on the config's corpus and report its perplexities.

    The model's contract: ``model(tokens (B, T) int64, state) -> (scores (B, T, V), new_state)``, where
    ``state`` is None at the start of a stream (the model makes its zero state) and otherwise what it
    returned for the previous segment (any nesting of tuples/lists of tensors: it is detached between
    segments, moved nowhere, and checkpointed mid-epoch so a resume is exact). ``scores`` are logits or
    log-probabilities (see ``sequence_loss``). ``V`` is ``config.vocab_size``.

    Each epoch: the training streams (``batch_size`` rows) in BPTT segments (``segment_lengths``), SGD or
    Adam on the segment's loss (``loss_over_time``: summed over its steps, or their mean) with the
    gradient norm clipped at ``clip``, then the validation perplexity, logged as
    ``val_perplexity`` with ``run.log_epoch``. The weights of the best validation epoch are kept and the
    test perplexity is theirs (the papers report the test score of the model selected on validation).

    Args:
        corpus: the data, if the runner already loaded it; else ``data.load(config, run.data_dir)``.

    Returns:
        ``val_perplexity`` (best epoch), ``test_perplexity`` (its weights), ``train_perplexity`` (last
        epoch's training loss), ``best_epoch``. Tokens per second is kb's, from ``run.log(samples=)``.

    Raises:
        KBError: a non-finite loss (training diverged).
    """
    device = torch.device(run.device)
    corpus = corpus or load(config, run.data_dir)
    record_dataset(run, corpus)
    if len(corpus.vocab) != config.vocab_size:
        raise KBError(f"the corpus has {len(corpus.vocab)} tokens and the model {config.vocab_size} outputs")
    train = batchify(corpus.train, config.batch_size).to(device)
    valid = batchify(corpus.valid, config.eval_batch_size).to(device)
    test = batchify(corpus.test, config.eval_batch_size).to(device)
    for split, streams in {"train": train, "valid": valid, "test": test}.items():
        if streams.shape[1] < 2:
            raise BadInput(f"{len(getattr(corpus, split))} {split} tokens make streams of {streams.shape[1]} "
                           "per row: raise train_limit / eval_limit or lower the batch sizes")
    model.to(device)
    optimizer = make_optimizer(config, model)
    run.record(parameters=sum(p.numel() for p in model.parameters()), vocabulary=len(corpus.vocab),
               train_tokens=len(corpus.train))

    predictions = train.shape[1] - 1
    steps = [len(segment_lengths(config, predictions, run.seed, e)) for e in range(config.epochs)]
    epoch0, batch0, state, history = 0, 0, None, []
    totals = {"loss": 0.0, "tokens": 0}   # this epoch's training loss so far, for its perplexity
    schedule = {"plateau_lr": config.lr, "best": math.inf, "best_epoch": 0, "best_weights": None}
    resumed = run.resume_state()
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        epoch0, batch0, history = resumed["epoch"], resumed["batch"], resumed["history"]
        state = map_state(lambda t: t.to(device), resumed["state"])
        schedule, totals = resumed["schedule"], resumed["totals"]

    def snapshot(epoch: int, batch: int, state) -> dict:
        return {"epoch": epoch, "batch": batch, "state": state, "history": history, "schedule": schedule,
                "totals": totals, "model": model.state_dict(), "optimizer": optimizer.state_dict()}

    run.start(total_steps=sum(steps), epochs=config.epochs, step=sum(steps[:epoch0]) + batch0)
    for epoch in range(epoch0, config.epochs):
        lr = learning_rate(config, epoch, schedule["plateau_lr"])
        lengths = segment_lengths(config, predictions, run.seed, epoch)
        start = sum(lengths[:batch0]) if epoch == epoch0 else 0
        model.train()
        for batch in range(batch0 if epoch == epoch0 else 0, len(lengths)):
            run.check_interrupt(functools.partial(snapshot, epoch, batch, state))
            length = lengths[batch]
            inputs, targets = train[:, start:start + length], train[:, start + 1:start + 1 + length]
            for group in optimizer.param_groups:
                # A mean loss over variable-length segments scales the rate with their length (AWD-LSTM
                # Sec. 4.1), so each token's gradient weighs the same; a summed loss does that by itself.
                group["lr"] = lr * length / config.bptt if config.variable_bptt and config.loss_over_time == "mean" else lr
            output, state = model(inputs, map_state(torch.Tensor.detach, state))
            loss = sequence_loss(output, targets)
            optimizer.zero_grad(set_to_none=True)
            (loss * length if config.loss_over_time == "sum" else loss).backward()
            if config.clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            value = loss.item()
            step = sum(steps[:epoch]) + batch + 1
            if not math.isfinite(value):
                raise KBError(f"training diverged at step {step} (loss {value}); lower lr or clip")
            run.log(step, epoch=epoch + 1, samples=targets.numel(), loss=value, lr=lr)
            start += length
            totals["loss"] += value * targets.numel()
            totals["tokens"] += targets.numel()
        val = perplexity(model, valid, config.bptt)
        if val < schedule["best"]:
            schedule.update(best=val, best_epoch=epoch + 1, best_weights=copy.deepcopy(model.state_dict()))
        elif config.schedule == "plateau":
            schedule["plateau_lr"] = lr * config.lr_decay
        train_ppl = math.exp(totals["loss"] / totals["tokens"])
        history.append({"epoch": epoch + 1, "val_perplexity": val, "train_perplexity": train_ppl, "lr": lr})
        run.log_epoch(epoch + 1, val_perplexity=val, train_perplexity=train_ppl, lr=lr)
        state, totals = None, {"loss": 0.0, "tokens": 0}
        run.checkpoint(snapshot(epoch + 1, 0, None))

    plot_per_epoch(history, [("train_perplexity", "train", "o-"), ("val_perplexity", "validation", "s-")],
                   ylabel="perplexity", title=f"{type(model).__name__} on {corpus.name}",
                   path=run.figures_dir / "perplexity.png")
    model.load_state_dict(schedule["best_weights"])
    return {"val_perplexity": schedule["best"], "test_perplexity": perplexity(model, test, config.bptt),
            "train_perplexity": history[-1]["train_perplexity"], "best_epoch": float(schedule["best_epoch"])}
