"""Training-mix loading speed (1 and 2 workers) next to one training step of a tiny model: is loading the bottleneck?

A fabricated PromptIR three-task tree with photo-sized, smooth images (Denoise 480x320 JPEG/BMP, Derain 481x321
PNG pairs, Dehaze 550x413 JPEG pairs), PromptIR's replication, 128x128 crops, batch 8.
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import interleaved_best, best_seconds  # noqa: E402

from cplir.data.benchmarks import PROMPTIR_REPEATS, load_benchmark  # noqa: E402
from cplir.data.datasets import TrainingMix, build_train_loader  # noqa: E402
from cplir.data.image_io import read_image  # noqa: E402
from cplir.models import build_model  # noqa: E402

BATCH, CROP = 8, 128
TINY = dict(dim=16, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1)


def photo(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth random colour image (bicubic-upsampled coarse noise plus fine grain), uint8 (H, W, 3)."""
    coarse = Image.fromarray(rng.integers(0, 256, (height // 24, width // 24, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), np.float32)
    return np.clip(smooth + rng.normal(0, 4, smooth.shape), 0, 255).astype(np.uint8)


def build_tree(root: Path) -> None:
    rng = np.random.default_rng(0)

    def save(relative: str, image: np.ndarray) -> None:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / relative, quality=95)

    for n in range(24):
        save(f"Train/Denoise/{n:05d}.{'bmp' if n % 2 else 'jpg'}", photo(rng, 480, 320))
    for n in range(8):
        clean = photo(rng, 481, 321)
        save(f"Train/Derain/gt/norain-{n}.png", clean)
        save(f"Train/Derain/rainy/rain-{n}.png", np.clip(clean.astype(int) + 30, 0, 255).astype(np.uint8))
    for n in range(16):
        clean = photo(rng, 550, 413)
        save(f"Train/Dehaze/original/{n:04d}.jpg", clean)
        save(f"Train/Dehaze/synthetic/part1/{n:04d}_0.8_0.2.jpg", (clean * 0.6 + 90).astype(np.uint8))


def loader_samples_per_second(mix: TrainingMix, workers: int, batches: int = 40) -> float:
    """Samples per second of a warm loader (workers started, first batches discarded)."""
    loader = build_train_loader(mix, BATCH, num_workers=workers, seed=0)
    iterator = iter(loader)
    for _ in range(2 * max(workers, 1)):  # fill the prefetch queues
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * BATCH / (time.perf_counter() - start)


def train_step_seconds(device: torch.device) -> float:
    model = build_model("cplir", **TINY).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
    lq, gt = torch.rand(BATCH, 3, CROP, CROP, device=device), torch.rand(BATCH, 3, CROP, CROP, device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        F.l1_loss(model(lq), gt).backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return best_seconds(step, repeats=3, warmup=1)


def decode_and_sample_ms(mix: TrainingMix, samples: int = 48) -> tuple:
    """Milliseconds per sample spent decoding its image files, and in all (what a decoded-image cache could save)."""
    indices = np.random.default_rng(1).choice(len(mix), samples, replace=False)
    records = [mix.record(int(i)) for i in indices]
    times = interleaved_best({
        "decode": lambda: [read_image(p) for r in records for p in (r.clean, r.degraded) if p is not None],
        "sample": lambda: [mix[int(i)] for i in indices],
    }, repeats=5)
    return times["decode"] / samples * 1e3, times["sample"] / samples * 1e3


def main():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, train step on {device}; "
          f"batch {BATCH}, crop {CROP}x{CROP}")
    with tempfile.TemporaryDirectory() as folder:
        build_tree(Path(folder))
        mix = TrainingMix(load_benchmark("promptir_three_task", folder), PROMPTIR_REPEATS, crop_size=CROP)
        print(f"mix: {len(mix)} samples per epoch {mix.samples_per_task}")
        decode_ms, sample_ms = decode_and_sample_ms(mix)
        rates = {workers: loader_samples_per_second(mix, workers) for workers in (1, 2)}
    step = train_step_seconds(device)
    print(f"train step (forward+backward+AdamW, L1, tiny cplir): {step * 1e3:8.1f} ms")
    for workers, rate in rates.items():
        load = BATCH / rate
        print(f"loader {workers} worker(s): {rate:7.1f} samples/s, {load * 1e3:7.1f} ms per batch, "
              f"ratio load/step {load / step:.3f}")
    print(f"one sample in the main process: {sample_ms:.1f} ms, of which decoding its files {decode_ms:.1f} ms "
          "(timed separately; the machine's load makes the two noisy)")
    load = BATCH / rates[2]
    verdict = "loading IS the bottleneck" if load > step else "loading is not the bottleneck"
    print(f"with 2 workers a batch loads in {load / step:.4f}x the time of a training step: {verdict}; "
          f"it would become one for steps shorter than {load * 1e3:.0f} ms (add workers on GPU machines)")


if __name__ == "__main__":
    main()
