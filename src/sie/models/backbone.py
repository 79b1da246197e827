"""The VICReg-style ResNet emulating TensorFlow "same" padding (docs/method.md#backbone).

Differences from torchvision's ResNet:
- stem: explicit zero pad (left/top 2, right/bottom 3), then a 7x7 stride-2 convolution without padding;
- max-pool: pad right/bottom by 1 with -1e4, then a 3x3 stride-2 pool without padding;
- BasicBlock: the stride sits on the SECOND 3x3 convolution, preceded by a right/bottom zero pad of 1;
- a projection shortcut (1x1 conv + norm) on the first block of every stage, stage 1 included;
- no fc layer: the output is the globally average-pooled feature (8 x width channels).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as functional
from torch import nn

NormLayer = Callable[[int], nn.Module]

BLOCKS_PER_STAGE: dict[str, tuple[int, ...]] = {
    "resnet18": (2, 2, 2, 2),
    "resnet9": (1, 1, 1, 1),
}
MAXPOOL_PAD_VALUE = -1e4
NORM_TYPES = (nn.BatchNorm2d, nn.SyncBatchNorm, nn.GroupNorm, nn.InstanceNorm2d)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with the stride on the second one, plus a (projection) shortcut."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        project_shortcut: bool,
        norm_layer: NormLayer,
    ) -> None:
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn1 = norm_layer(out_channels)
        second_padding = 0 if stride > 1 else 1
        self.conv2 = nn.Conv2d(
            out_channels, out_channels, 3, stride=stride, padding=second_padding, bias=False
        )
        self.bn2 = norm_layer(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if project_shortcut:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                norm_layer(out_channels),
            )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Residual branch + shortcut, then ReLU."""
        out = self.relu(self.bn1(self.conv1(inputs)))
        if self.stride > 1:
            out = functional.pad(out, (0, 1, 0, 1))
        out = self.bn2(self.conv2(out))
        shortcut = inputs if self.downsample is None else self.downsample(inputs)
        return self.relu(out + shortcut)


class ResNet(nn.Module):
    """Stem, four stages of BasicBlocks, global average pooling; returns (batch, 8 * width) features."""

    def __init__(self, blocks_per_stage: tuple[int, ...], width: int, norm_layer: NormLayer) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=0, bias=False)
        self.bn1 = norm_layer(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=0)
        stages = []
        in_channels = width
        for index, num_blocks in enumerate(blocks_per_stage):
            out_channels = width * 2**index
            stride = 1 if index == 0 else 2
            blocks = [BasicBlock(in_channels, out_channels, stride, True, norm_layer)]
            blocks += [
                BasicBlock(out_channels, out_channels, 1, False, norm_layer) for _ in range(num_blocks - 1)
            ]
            stages.append(nn.Sequential(*blocks))
            in_channels = out_channels
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.output_dim = in_channels

    def stem(self, images: torch.Tensor) -> torch.Tensor:
        """Asymmetric padded 7x7 stride-2 convolution, norm, ReLU, -1e4 padded max-pool."""
        out = functional.pad(images, (2, 3, 2, 3))
        out = self.relu(self.bn1(self.conv1(out)))
        out = functional.pad(out, (0, 1, 0, 1), value=MAXPOOL_PAD_VALUE)
        return self.maxpool(out)

    def forward_stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps after the stem and after each of the four stages (for inspection and tests)."""
        outputs = [self.stem(images)]
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            outputs.append(stage(outputs[-1]))
        return outputs

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled representation of shape (batch, output_dim)."""
        out = self.stem(images)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return torch.flatten(self.avgpool(out), 1)


def _initialise(model: ResNet, zero_init_residual: bool) -> None:
    """Kaiming normal (fan_out, relu) convolutions, unit/zero norms, optional zero last gamma per branch."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, NORM_TYPES) and module.weight is not None:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    if zero_init_residual:
        for module in model.modules():
            if isinstance(module, BasicBlock) and getattr(module.bn2, "weight", None) is not None:
                nn.init.zeros_(module.bn2.weight)


def build_backbone(
    arch: str = "resnet18",
    width: int = 64,
    zero_init_residual: bool = True,
    norm_layer: NormLayer = nn.BatchNorm2d,
) -> tuple[nn.Module, int]:
    """Build the backbone and return it with its output width (8 * width: 512 for the paper's resnet18).

    ``arch`` is "resnet18" (two blocks per stage) or "resnet9" (one block per stage, for CPU runs).
    """
    if arch not in BLOCKS_PER_STAGE:
        raise ValueError(f"unknown arch {arch!r}; known: {sorted(BLOCKS_PER_STAGE)}")
    if width < 1:
        raise ValueError(f"width must be positive, got {width}")
    model = ResNet(BLOCKS_PER_STAGE[arch], width, norm_layer)
    _initialise(model, zero_init_residual)
    return model, model.output_dim
