"""Figures a runner draws in its run folder from the metrics it logged."""

from pathlib import Path


def plot_per_epoch(history: list[dict], curves: list[tuple[str, str, str]], *, ylabel: str, title: str,
                   path: Path) -> None:
    """One line per ``(metric, label, matplotlib style)`` of ``history`` (dicts with ``epoch``) against
    the epoch, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for metric, label, style in curves:
        ax.plot(epochs, [h[metric] for h in history], style, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
