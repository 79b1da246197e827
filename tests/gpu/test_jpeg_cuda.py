"""Batched GPU JPEG decoding (nvJPEG through ``torchvision.io.decode_jpeg(list, device="cuda")``) against the
CPU decoding of the packed-store reader (``sie.data.readers``: libjpeg-turbo through torchvision).

The reader has no GPU path yet; these tests check the torchvision call that one would use (the loader
yields JPEG bytes, the training process decodes a whole batch on the GPU).

Bit-identity is not expected. The JPEG standard (ITU-T T.81) fixes the bitstream, not the decoder's
arithmetic: it bounds the inverse DCT's error (the IEEE 1180 accuracy: within 1 level of the exact
transform per sample) and leaves the chroma upsampling filter to the decoder. libjpeg-turbo uses its
accurate integer IDCT and "fancy" (triangular) upsampling of subsampled chroma; nvJPEG its own IDCT and
upsampling (and on A100/H100-class GPUs a hardware decoder for batches). So:

- 4:4:4 (no chroma upsampling): only the IDCT and the YCbCr to RGB rounding differ; 1 level in Y and in
  Cr (x 1.402 into red) can add up to 3 levels in one RGB channel: asserted at most 3;
- 4:2:0 (what Pillow and libjpeg write by default; the store's noisy views are the worst case for the
  upsampling filter): asserted as torchvision's own CUDA decoding test does, a mean difference below 2
  levels.

Every measured difference (largest, mean, 99th percentile, share of identical values) is recorded, so
the GPU run says whether the two decoders are bit-identical on this GPU or differ by 1-2 levels.
"""

import io

import numpy as np
import pytest
import torch
from gpu_support import GPU_TESTS, record, target_device
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg

from sie.data.readers import PackedViews, decode_image, open_reader

pytestmark = [
    *GPU_TESTS,
    # torchvision 0.29 deprecates its codecs (for TorchCodec, not a dependency); the readers use them too
    pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning"),
]


def decode_batch_on_device(encoded: list[bytes]) -> torch.Tensor:
    """One batched decode of JPEG bytes on the test device, as uint8 (B, 3, H, W) on the CPU."""
    tensors = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in encoded]
    decoded = decode_jpeg(tensors, mode=ImageReadMode.RGB, device=target_device())
    return torch.stack(decoded).cpu()


def differences(gpu: torch.Tensor, cpu: torch.Tensor) -> dict[str, float]:
    """Largest, mean and 99th-percentile absolute difference in levels, and the share of equal values."""
    absolute = (gpu.int() - cpu.int()).abs().float()
    return {
        "largest": float(absolute.max()),
        "mean": float(absolute.mean()),
        "percentile_99": float(absolute.flatten().quantile(0.99)) if absolute.numel() < 2**24 else -1.0,
        "identical_share": float((absolute == 0).float().mean()),
    }


def render_like(generator: np.random.Generator, size: int) -> Image.Image:
    """A smooth floor gradient, a shaded disc for the object and a little noise (like bench/loader.py)."""
    axis = np.linspace(0.0, 1.0, size)
    rows, columns = np.meshgrid(axis, axis, indexing="ij")
    pixels = generator.uniform(0.2, 0.8, 3)[None, None, :] * (0.6 + 0.4 * rows[..., None])
    centre, radius = generator.uniform(0.3, 0.7, 2), generator.uniform(0.15, 0.3)
    inside = (rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 < radius**2
    pixels[inside] = generator.uniform(0.1, 0.9, 3) * (0.5 + 0.5 * columns[inside, None])
    pixels += generator.normal(0.0, 0.01, pixels.shape)
    return Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8))


def test_batched_gpu_decode_of_the_packed_store_gives_the_cpu_readers_pixels(jpeg_dataset):
    reader = open_reader(jpeg_dataset, "train", "packed")
    assert isinstance(reader, PackedViews), "the store should hold JPEG bytes"
    rows = np.arange(len(reader))
    cpu = reader.read_images(rows)
    gpu = decode_batch_on_device([reader.read(int(row)) for row in rows])
    assert gpu.shape == cpu.shape and gpu.dtype == cpu.dtype == torch.uint8
    measured = differences(gpu, cpu)
    record("jpeg", images="packed store, noisy 64 px, Pillow quality 95 (4:2:0)", **measured)
    assert measured["mean"] < 2, f"nvJPEG and the CPU reader differ by {measured}"


@pytest.mark.parametrize(("subsampling", "name"), [(0, "4:4:4"), (2, "4:2:0")])
def test_gpu_decode_differs_from_libjpeg_turbo_by_at_most_rounding(subsampling, name):
    generator = np.random.default_rng(0)
    encoded = []
    for size in (64, 256, 256, 255):  # 255: a size that is not a multiple of the 16-pixel MCU
        buffer = io.BytesIO()
        render_like(generator, size).save(buffer, format="JPEG", quality=90, subsampling=subsampling)
        encoded.append(buffer.getvalue())
    measured = {}
    for index, data in enumerate(encoded):
        cpu = decode_image(data).unsqueeze(0)
        batched = decode_batch_on_device([data, data])
        single = decode_jpeg(
            torch.frombuffer(bytearray(data), dtype=torch.uint8),
            mode=ImageReadMode.RGB,
            device=target_device(),
        )
        assert batched.shape[1:] == cpu.shape[1:]
        measured[f"{index}: {cpu.shape[-1]} px"] = {
            **differences(batched[:1], cpu),
            "single_equals_batched": bool(torch.equal(single.cpu(), batched[0])),
        }
    record("jpeg", images=f"render-like, Pillow quality 90 ({name})", by_size=measured)
    largest = max(entry["largest"] for entry in measured.values())
    mean = max(entry["mean"] for entry in measured.values())
    if subsampling == 0:
        assert largest <= 3, (
            f"{name}: nvJPEG differs from libjpeg-turbo by up to {largest} levels: {measured}"
        )
    assert mean < 2, f"{name}: nvJPEG differs from libjpeg-turbo by {mean} levels on average: {measured}"
