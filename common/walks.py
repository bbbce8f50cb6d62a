"""Latent walks (`sample --walk K`): each row a path through K points of z, spherical interpolation between
consecutive points, the same number of steps in every row; written as a grid and an animated GIF.

Spherical interpolation (slerp; White 2016, "Sampling generative networks") follows the great circle
between two points instead of the chord: a chord between two high-dimensional noise vectors passes close
to the origin, where z's norm is far below what the generator saw in training, and the middle of a
linear walk washes out. The noise part is slerped; a categorical code (--info-codes) is mixed linearly,
one one-hot block into the next. The K points of a walk are `sample`'s own noise: the walk's keyframes
are the images `sample --n ROWS*K --seed SEED` draws, row by row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.rundir import atomic_path, grid_image

FRAME_MS = 80  # per frame of the GIF
GIF_SCALE = 3  # pixels per image pixel, as the grids


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points at fractions t of the great-circle arc from a to b (rows of a and b; t [T]) -> [rows, T, d].
    Exactly a at t = 0 and b at t = 1; a linear mix where a and b are (anti)parallel (no arc defined)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    norms = np.linalg.norm(a64, axis=-1) * np.linalg.norm(b64, axis=-1)
    cosine = np.clip(np.sum(a64 * b64, axis=-1) / np.maximum(norms, 1e-300), -1.0, 1.0)
    omega = np.arccos(cosine)[:, None, None]
    t = np.asarray(t, np.float64)[None, :, None]
    sine = np.sin(omega)
    linear = sine < 1e-6
    safe = np.where(linear, 1.0, sine)
    wa = np.where(linear, 1.0 - t, np.sin((1.0 - t) * omega) / safe)
    wb = np.where(linear, t, np.sin(t * omega) / safe)
    return wa * a64[:, None, :] + wb * b64[:, None, :]


def walk_latents(points: np.ndarray, steps: int, noise_dim: int) -> np.ndarray:
    """points [rows, K, latent] -> z [rows, (K - 1) * steps + 1, latent]: `steps` steps from each point to
    the next (slerp on the first noise_dim values, a linear mix of the rest: the code)."""
    rows, count, width = points.shape
    t = np.arange(steps) / steps
    segments = []
    for k in range(count - 1):
        a, b = points[:, k], points[:, k + 1]
        noise = slerp(a[:, :noise_dim], b[:, :noise_dim], t)
        code = (1.0 - t)[None, :, None] * a[:, None, noise_dim:] + t[None, :, None] * b[:, None, noise_dim:]
        segments.append(np.concatenate([noise, code], axis=-1))
    segments.append(points[:, -1:].astype(np.float64))
    return np.concatenate(segments, axis=1).astype(np.float32)


def walk_points(latent: np.ndarray, rows: int, points: int) -> np.ndarray:
    """`sample`'s z of rows * points vectors as each row's walk points: [rows, points, latent]."""
    return latent.reshape(rows, points, -1)


def code_walk_points(noise: np.ndarray, codes: int) -> np.ndarray:
    """--walk --by-code: one row per code value, each row the same walk points (noise [K, noise_dim]) with
    its code: [codes, K, noise_dim + codes]."""
    one_hot = np.repeat(np.eye(codes, dtype=np.float32)[:, None, :], len(noise), axis=1)
    return np.concatenate([np.broadcast_to(noise, (codes, *noise.shape)), one_hot], axis=-1)


def write_walk(images: np.ndarray, out: Path) -> tuple[Path, Path]:
    """images uint8 [rows, frames, H, W, C] -> out's .png (a grid: a row per walk, a column per step) and
    .gif (frame t: every walk's image t, in a square grid), both written atomically."""
    from PIL import Image

    rows, frames = images.shape[:2]
    png, gif = out.with_suffix(".png"), out.with_suffix(".gif")

    def picture(grid: np.ndarray) -> Image.Image:
        image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
        return image.resize((image.width * GIF_SCALE, image.height * GIF_SCALE), Image.NEAREST)

    grid = picture(grid_image(images.reshape(rows * frames, *images.shape[2:]), columns=frames))
    with atomic_path(png) as tmp:
        grid.save(tmp, format="PNG")
    pictures = [picture(grid_image(images[:, t])) for t in range(frames)]
    # One palette for every frame (from up to eight frames along the walk), so colours do not flicker.
    picks = sorted({round(i) for i in np.linspace(0, frames - 1, min(frames, 8))})
    montage = np.concatenate([np.asarray(pictures[i].convert("RGB")) for i in picks], axis=0)
    palette = Image.fromarray(montage).quantize(colors=256)
    paletted = [p.convert("RGB").quantize(palette=palette, dither=Image.Dither.NONE) for p in pictures]
    with atomic_path(gif) as tmp:
        paletted[0].save(
            tmp, format="GIF", save_all=True, append_images=paletted[1:], duration=FRAME_MS, loop=0
        )
    return png, gif
