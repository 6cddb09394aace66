"""curves.png: what a run did, for a person. Three panels over epochs: the train loss of every logged step (and its
smoothed line) with the validation loss; validation top-1 / top-5 (and the EMA's top-1); the lr of every step.
Drawn with matplotlib's Agg canvas (no display, no global pyplot state)."""
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def smoothed(values):
    """A debiased exponential moving average (TensorBoard's smoothing), heavier the more points there are: a short
    run's few points are drawn as they are."""
    weight = min(0.9, max(0.0, 1 - 10 / max(len(values), 1)))
    out, average = [], 0.0
    for t, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        out.append(average / (1 - weight ** t))
    return out, weight


def draw_curves(records, schedule, steps_per_epoch, path):
    """records: the per-epoch metrics (metrics.jsonl); schedule: the lr of every optimizer step."""
    figure = Figure(figsize=(13, 3.8), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    loss_axes, accuracy_axes, lr_axes = figure.subplots(1, 3)
    epochs = [r["epoch"] for r in records]
    last_epoch = max(epochs, default=1)

    points = [point for r in records for point in r.get("train_curve") or []]
    if points:  # none when every image of the epochs was unreadable
        steps, losses = zip(*points)
        at = np.asarray(steps) / steps_per_epoch
        line, weight = smoothed(losses)
        if weight:
            loss_axes.plot(at, losses, color="tab:blue", alpha=0.3, linewidth=1, label="train (logged steps)")
        loss_axes.plot(at, line, color="tab:blue", linewidth=2, label="train, smoothed" if weight else "train")
    validated = [r for r in records if r.get("loss") is not None]
    if validated:
        loss_axes.plot([r["epoch"] for r in validated], [r["loss"] for r in validated], "o-", color="tab:orange",
                       label="validation")
    loss_axes.set(title="loss", xlabel="epoch")

    for key, label, color in (("top1", "top-1", "tab:green"), ("top5", "top-5", "tab:purple"),
                              ("ema_top1", "EMA top-1", "tab:gray")):
        points = [(r["epoch"], 100 * r[key]) for r in records if r.get(key) is not None]
        if points:
            accuracy_axes.plot(*zip(*points), "o-", color=color, label=label)
    accuracy_axes.set(title="validation accuracy (%)", xlabel="epoch", ylim=(0, 100.5))

    done = min(last_epoch * steps_per_epoch, len(schedule))
    lr_axes.plot(np.arange(1, done + 1) / steps_per_epoch, schedule[:done], color="tab:red")
    lr_axes.set(title="learning rate", xlabel="epoch")
    lr_axes.set_ylim(bottom=0, top=max(float(np.max(schedule[:done], initial=0)) * 1.08, 1e-12))
    lr_axes.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))

    for axes in (loss_axes, accuracy_axes, lr_axes):
        axes.set_xlim(0, last_epoch * 1.04)  # room for the last epoch's markers
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(True, alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small")
    figure.savefig(path)
