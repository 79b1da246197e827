"""The TF-same-padding ResNet (docs/method.md#backbone)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as functional
from torch import nn

from sie.models.backbone import BasicBlock, build_backbone


@pytest.fixture(scope="module")
def resnet18() -> nn.Module:
    torch.manual_seed(0)
    model, _ = build_backbone("resnet18", 64)
    return model.eval()


def tf_same_pad(images: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    """TensorFlow "SAME": output ceil(in / stride); the odd pad pixel goes right/bottom."""
    size = images.shape[-1]
    output = math.ceil(size / stride)
    total = max((output - 1) * stride + kernel - size, 0)
    before = total // 2
    return functional.pad(images, (before, total - before, before, total - before), value=value)


def test_parameter_count_and_output_dim() -> None:
    model, output_dim = build_backbone()
    assert sum(parameter.numel() for parameter in model.parameters()) == 11_180_736
    assert output_dim == 512
    torchvision_resnet18_without_fc = 11_176_512
    stage1_shortcut = 64 * 64 + 2 * 64
    assert torchvision_resnet18_without_fc + stage1_shortcut == 11_180_736


@pytest.mark.parametrize(("size", "expected"), [(256, [64, 64, 32, 16, 8]), (64, [16, 16, 8, 4, 2])])
def test_stage_sizes_and_output(resnet18: nn.Module, size: int, expected: list[int]) -> None:
    images = torch.randn(2, 3, size, size)
    with torch.no_grad():
        stages = resnet18.forward_stages(images)
        output = resnet18(images)
    assert [stage.shape[-1] for stage in stages] == expected
    assert [stage.shape[-2] for stage in stages] == expected
    assert [stage.shape[1] for stage in stages] == [64, 64, 128, 256, 512]
    assert output.shape == (2, 512)


def test_stem_is_tf_same_padding(resnet18: nn.Module) -> None:
    images = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        convolved = resnet18.conv1(tf_same_pad(images, 7, 2))
        assert convolved.shape[-1] == 128
        activated = torch.relu(resnet18.bn1(convolved))
        expected = functional.max_pool2d(tf_same_pad(activated, 3, 2, value=-1e4), 3, 2)
        torch.testing.assert_close(resnet18.stem(images), expected)


def test_stride_on_second_convolution_with_right_bottom_pad() -> None:
    torch.manual_seed(0)
    block = BasicBlock(8, 16, stride=2, project_shortcut=True, norm_layer=nn.BatchNorm2d).eval()
    assert block.conv1.stride == (1, 1) and block.conv1.padding == (1, 1)
    assert block.conv2.stride == (2, 2) and block.conv2.padding == (0, 0)
    inputs = torch.randn(2, 8, 10, 10)
    with torch.no_grad():
        branch = torch.relu(block.bn1(block.conv1(inputs)))
        branch = block.bn2(block.conv2(tf_same_pad(branch, 3, 2)))
        expected = torch.relu(branch + block.downsample(inputs))
        torch.testing.assert_close(block(inputs), expected)


def test_projection_shortcut_on_first_block_of_every_stage(resnet18: nn.Module) -> None:
    for stage in (resnet18.layer1, resnet18.layer2, resnet18.layer3, resnet18.layer4):
        first, *rest = list(stage)
        assert first.downsample is not None
        assert all(block.downsample is None for block in rest)
    assert resnet18.layer1[0].downsample[0].stride == (1, 1)


def test_zero_init_residual_really_zero() -> None:
    model, _ = build_backbone("resnet18", 16)
    blocks = [module for module in model.modules() if isinstance(module, BasicBlock)]
    assert len(blocks) == 8
    for block in blocks:
        assert torch.count_nonzero(block.bn2.weight) == 0
        assert torch.all(block.bn1.weight == 1)
        assert torch.all(block.downsample[1].weight == 1) if block.downsample is not None else True
    not_zeroed, _ = build_backbone("resnet18", 16, zero_init_residual=False)
    assert all(
        torch.all(module.bn2.weight == 1) for module in not_zeroed.modules() if isinstance(module, BasicBlock)
    )


def test_kaiming_fan_out_initialisation() -> None:
    torch.manual_seed(0)
    model, _ = build_backbone("resnet18", 64)
    weight = model.layer4[1].conv2.weight
    expected_std = math.sqrt(2.0 / (weight.shape[0] * 3 * 3))
    assert abs(weight.std().item() / expected_std - 1) < 0.02
    assert abs(weight.mean().item()) < 0.05 * expected_std


@pytest.mark.parametrize(
    ("arch", "width", "blocks"), [("resnet18", 16, 2), ("resnet9", 8, 1), ("resnet9", 32, 1)]
)
def test_small_variants(arch: str, width: int, blocks: int) -> None:
    model, output_dim = build_backbone(arch, width)
    assert output_dim == 8 * width
    assert all(len(stage) == blocks for stage in (model.layer1, model.layer2, model.layer3, model.layer4))
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, 8 * width)


def test_custom_norm_layer_and_unknown_arch() -> None:
    model, _ = build_backbone("resnet9", 8, norm_layer=lambda channels: nn.GroupNorm(2, channels))
    assert not any(isinstance(module, nn.BatchNorm2d) for module in model.modules())
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 64)
    with pytest.raises(ValueError, match="resnet18"):
        build_backbone("resnet1000")
