"""A PNG of the training curves (loss, learning rate, top-1 per epoch), drawn with Pillow: no plotting library."""
from PIL import Image, ImageDraw

PANELS = (("train_loss", "train loss"), ("lr", "learning rate"), ("top1", "val top-1"))


def draw_curves(records, path, width=900, height=300):
    """One panel per curve, epochs on x; records are the per-epoch dicts of the metrics log."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    panel_width = width // len(PANELS)
    for i, (key, title) in enumerate(PANELS):
        left, top, right, bottom = i * panel_width + 45, 25, (i + 1) * panel_width - 10, height - 30
        draw.rectangle([left, top, right, bottom], outline="black")
        draw.text((left, 5), title, fill="black")
        points = [(r["epoch"], r[key]) for r in records if r.get(key) is not None]
        if not points:
            continue
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x0, x1 = min(xs), max(max(xs), min(xs) + 1)
        y0, y1 = min(ys), max(ys)
        y0, y1 = (y0 - 0.5, y1 + 0.5) if y1 == y0 else (y0, y1)
        draw.text((left - 43, top), f"{y1:.3g}", fill="black")
        draw.text((left - 43, bottom - 10), f"{y0:.3g}", fill="black")
        draw.text((left, bottom + 5), f"epoch {x0}", fill="black")
        draw.text((right - 60, bottom + 5), f"epoch {x1}", fill="black")
        scaled = [(left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top))
                  for x, y in points]
        if len(scaled) > 1:
            draw.line(scaled, fill=(31, 119, 180), width=2)
        for x, y in scaled:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(31, 119, 180))
    image.save(path)
