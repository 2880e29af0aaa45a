"""Maps per second: Excitation Backprop against the plain gradient map, on the CPU or a GPU.

Two models, each a DNN truncated at fc6 followed by an xNN-like encoder giving 5 X-features:
(a) a small VGG-like CNN on 64x64 images, map layer = its third pooling layer;
(b) torchvision vgg16 (random weights, nothing downloaded) at 224x224, encoder
    4096 -> 800 -> 100 -> 5 on fc6 (`classifier.1`), map layer pool4 (`features.23`).
Two maps per image (the two largest X-features stand in for the significant ones). Prints maps
per second for both methods, their time ratio, forward-only time and the peak memory of a batch.

On a GPU (``--device cuda``, or ``auto`` where there is one) each figure is measured in IEEE
float32, as ``xnaming explain`` computes, and again with TensorFloat-32 (torch's default for
convolutions), and the VGG16 line is compared with the goal of 1,000 maps/s; batches are larger
(``--vgg-images 64``) and every timing ends with a CUDA synchronisation.

    .venv/bin/python bench/bench_maps.py [--threads 2] [--repeats 3] [--device auto]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable

import torch
import torchvision
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from xnn_training.devices import resolve_device, strict_float32
from xnn_training.maps.excitation_backprop import ExcitationBackprop, gradient_map

GOAL_GPU_MAPS_PER_S = 1000  # VGG16 at 224 px, one GPU (issue 15)


class Explained(nn.Module):
    """DNN up to its fc6 features (a graph module), then the X-feature encoder."""

    def __init__(self, dnn: nn.Module, node: str, widths: list[int]):
        super().__init__()
        self.dnn = create_feature_extractor(dnn, return_nodes={node: "fc6"})
        layers: list[nn.Module] = []
        for n_in, n_out in itertools.pairwise(widths):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        self.encoder = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.dnn(x)["fc6"])


def toy_vgg() -> nn.Module:
    """Four conv blocks (64 -> 32 -> 16 -> 8 -> 4 pixels), fc6 and fc7, as in VGG."""

    def block(n_in: int, n_out: int) -> list[nn.Module]:
        return [nn.Conv2d(n_in, n_out, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]

    features = nn.Sequential(*block(3, 16), *block(16, 32), *block(32, 64), *block(64, 64))
    classifier = nn.Sequential(
        nn.Linear(64 * 4 * 4, 256), nn.ReLU(inplace=True), nn.Linear(256, 256), nn.ReLU()
    )
    return nn.Sequential(features, nn.Flatten(), classifier)


class PeakMemory:
    """Peak resident memory above the starting level, sampled every millisecond."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")

    def rss(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self.page

    def __enter__(self) -> PeakMemory:
        self.start = self.peak = self.rss()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.001)

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.rss())

    @property
    def mib(self) -> float:
        return (self.peak - self.start) / 2**20


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_times(
    runs: list[Callable[[], object]], repeats: int, device: torch.device
) -> list[tuple[float, float]]:
    """Best (wall, CPU) seconds of ``repeats`` for each run, interleaved so that a busy spell
    on a shared machine hits all of them alike. CPU time suffers less from other processes."""
    best = [(float("inf"), float("inf"))] * len(runs)
    for _ in range(repeats):
        for i, run in enumerate(runs):
            synchronize(device)
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            synchronize(device)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[i] = (min(best[i][0], wall), min(best[i][1], cpu))
    return best


class GPUPeakMemory:
    """Peak CUDA memory allocated during the block, above what was allocated before."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> GPUPeakMemory:
        synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self.start = torch.cuda.memory_allocated(self.device)
        return self

    def __exit__(self, *exc: object) -> None:
        synchronize(self.device)
        self.peak = torch.cuda.max_memory_allocated(self.device)

    @property
    def mib(self) -> float:
        return (self.peak - self.start) / 2**20


def bench(
    name: str,
    model: nn.Module,
    images: torch.Tensor,
    map_layer: str,
    repeats: int,
    device: torch.device,
    goal: float | None = None,
) -> None:
    model.eval().to(device)
    images = images.to(device)
    with torch.no_grad():
        x_features = model(images)
    top2 = x_features.topk(2, dim=1).indices
    targets = [(i, int(unit)) for i in range(len(images)) for unit in top2[i]]
    n_maps = len(targets)

    def forward() -> None:
        with torch.no_grad():
            model(images)

    explain = ExcitationBackprop(model, map_layer)  # as the bundle writer: one for all batches

    def eb() -> None:
        explain(images, targets)

    def grad() -> None:
        gradient_map(model, images, targets, map_layer)

    eb()  # warm-up: first-call overheads, and W+ of the Linear layers made once
    grad()
    forward()
    (t_forward, c_forward), (t_eb, c_eb), (t_grad, c_grad) = best_times(
        [forward, eb, grad], repeats, device
    )
    memory = (lambda: GPUPeakMemory(device)) if device.type == "cuda" else PeakMemory
    with memory() as eb_memory:
        eb()
    with memory() as grad_memory:
        grad()
    result = explain(images, targets)
    n_images = len(images)
    precision = ""
    if device.type == "cuda":
        precision = f", {torch.backends.cudnn.conv.fp32_precision} convolutions"
    print(
        f"\n{name}: {n_images} images x 2 maps = {n_maps} maps, map layer {map_layer!r}, "
        f"{device}{precision}"
    )
    print("                               wall s     per wall s   CPU s")
    per_second = n_images / t_forward
    print(f"  forward only (no grad)     {t_forward:7.3f} {per_second:7.1f} img {c_forward:7.3f}")
    print(f"  Excitation Backprop        {t_eb:7.3f} {n_maps / t_eb:7.1f} map {c_eb:7.3f}")
    print(f"  gradient x activation      {t_grad:7.3f} {n_maps / t_grad:7.1f} map {c_grad:7.3f}")
    print(f"  ratio EB / gradient        {t_eb / t_grad:7.2f} wall    {c_eb / c_grad:7.2f} CPU")
    print(
        f"  peak memory of a batch       EB {eb_memory.mib:7.1f} MiB, "
        f"gradient {grad_memory.mib:7.1f} MiB"
    )
    print(f"  W+ kept between batches      {explain.kept_bytes / 2**20:7.1f} MiB")
    mass = result.mass.cpu()[result.active]
    print(
        f"  active targets {int(result.active.sum())}/{n_maps}, probability at the map layer "
        f"{mass.min():.6f}..{mass.max():.6f}"
    )
    print(f"  maps/s over forward-only images/s: {(n_maps / t_eb) / per_second:.3f}")
    if goal is not None:
        reached = "met" if n_maps / t_eb >= goal else "NOT met"
        print(f"  goal >= {goal:.0f} maps/s on one GPU: {n_maps / t_eb:.0f} maps/s, {reached}")


def main() -> None:
    # Large allocations straight from mmap and back to the system when freed, so that the
    # resident memory sampled during a batch follows the tensors alive (glibc would otherwise
    # keep freed memory resident and raise its mmap threshold).
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") is None:
        os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--toy-images", type=int, help="default 64 (CPU), 256 (GPU)")
    parser.add_argument("--vgg-images", type=int, help="default 4 (CPU), 64 (GPU)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    args = parser.parse_args()
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, load {os.getloadavg()}"
        + (f", GPU {torch.cuda.get_device_name(device)}" if gpu else "")
    )
    toy_images = args.toy_images or (256 if gpu else 64)
    vgg_images = args.vgg_images or (64 if gpu else 4)
    toy = Explained(toy_vgg(), "2.1", [256, 64, 16, 5])
    vgg = Explained(torchvision.models.vgg16(weights=None), "classifier.1", [4096, 800, 100, 5])
    toy_batch = torch.rand(toy_images, 3, 64, 64)
    vgg_batch = torch.rand(vgg_images, 3, 224, 224)
    # IEEE float32 as explain computes; on a GPU also torch's default (TF32 convolutions).
    for strict in (True, False) if gpu else (True,):
        with strict_float32(device) if strict else contextlib.nullcontext():
            bench("toy VGG-like CNN, 64x64", toy, toy_batch, "dnn.0.8", args.repeats, device)
            goal = GOAL_GPU_MAPS_PER_S if gpu else None
            bench(
                "torchvision vgg16, 224x224", vgg, vgg_batch, "dnn.features.23", args.repeats,
                device, goal,
            )  # fmt: skip


if __name__ == "__main__":
    main()
