"""The built-in models: ``(input_shape, num_classes) -> nn.Module`` builders by name.

Every model maps a batch ``(B, *input_shape)`` to logits ``(B, num_classes)``.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from sampletune.errors import ConfigError, check
from sampletune.models.registry import register_model


@register_model("mlp")
def mlp(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Flatten, two hidden layers of 256 with ReLU, linear head; any input shape."""
    d = math.prod(input_shape)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(d, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
        nn.Linear(256, num_classes),
    )


class ConvBase1d(nn.Module):
    """The MNIST-1D paper's ConvBase (Greydanus 2020): three stride-2 conv1d layers of 25
    channels (kernels 5, 3, 3; padding 1) with ReLU, then a linear head on the flattened maps.

    Takes ``(B, L)`` or ``(B, C, L)``; on length 40 the head sees 25 x 5 = 125 features.
    """

    def __init__(self, in_channels: int, length: int, num_classes: int, channels: int = 25):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv1d(in_channels, channels, 5, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
        )
        for k in (5, 3, 3):
            length = (length + 2 - k) // 2 + 1
        check(length >= 1, "model", "cnn1d needs sequences of length >= 3")
        self.head = nn.Linear(channels * length, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        return self.head(self.convs(x).flatten(1))


@register_model("cnn1d")
def cnn1d(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    check(len(input_shape) in (1, 2), "model", f"cnn1d needs (L,) or (C, L) inputs, got "
          f"{input_shape}")
    c, length = (1, input_shape[0]) if len(input_shape) == 1 else input_shape
    return ConvBase1d(c, length, num_classes)


def _image_channels(name: str, input_shape: tuple[int, ...]) -> int:
    check(len(input_shape) == 3, "model", f"{name} needs (C, H, W) image inputs, got "
          f"{input_shape}")
    return input_shape[0]


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


@register_model("smallcnn")
def smallcnn(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Three conv3x3-BN-ReLU blocks (32, 64, 128 channels; 2x2 max-pool after the first two),
    global average pool, linear head. Works from 8x8 (digits) up to 32x32."""
    c = _image_channels("smallcnn", input_shape)
    return nn.Sequential(
        *_conv_bn_relu(c, 32), nn.MaxPool2d(2), *_conv_bn_relu(32, 64), nn.MaxPool2d(2),
        *_conv_bn_relu(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(128, num_classes),
    )


@register_model("resnet18")
def resnet18(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """ResNet-18 in its CIFAR form: 3x3 stride-1 stem, no max-pool, BasicBlocks [2, 2, 2, 2]."""
    from torchvision.models.resnet import BasicBlock, ResNet

    c = _image_channels("resnet18", input_shape)
    net = ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
    net.conv1 = nn.Conv2d(c, 64, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    net.maxpool = nn.Identity()
    return net


class _WideBlock(nn.Module):
    """Pre-activation residual block of a WideResNet, as in FixMatch's ``residual``.

    BN (momentum 0.001) and leaky ReLU (0.1) precede each 3x3 conv; the shortcut is a 1x1
    conv when the width or stride changes, fed the activated input if
    ``activate_before_residual`` (first block) and the raw input otherwise.
    """

    def __init__(self, cin: int, cout: int, stride: int, activate_before_residual: bool):
        super().__init__()
        self.act1 = nn.Sequential(nn.BatchNorm2d(cin, momentum=0.001), nn.LeakyReLU(0.1))
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.act2 = nn.Sequential(nn.BatchNorm2d(cout, momentum=0.001), nn.LeakyReLU(0.1))
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = (
            nn.Conv2d(cin, cout, 1, stride, bias=False) if cin != cout or stride != 1 else None
        )
        self.activate_before_residual = activate_before_residual

    def forward(self, x: Tensor) -> Tensor:
        a = self.act1(x)
        out = self.conv2(self.act2(self.conv1(a)))
        skip = a if self.activate_before_residual else x
        return out + (self.shortcut(skip) if self.shortcut is not None else skip)


class WideResNet(nn.Module):
    """WideResNet-``depth``-``widen`` (Zagoruyko & Komodakis 2016) in the FixMatch form.

    A 3x3 stem of 16 channels, three groups of ``(depth - 4) / 6`` blocks at widths
    16k, 32k, 64k (strides 1, 2, 2), BN + leaky ReLU, global average pool, linear head.
    """

    def __init__(self, in_channels: int, num_classes: int, depth: int = 28, widen: int = 2):
        super().__init__()
        check((depth - 4) % 6 == 0, "model", f"WideResNet depth {depth} is not 6n + 4")
        n = (depth - 4) // 6
        widths = [16 * widen, 32 * widen, 64 * widen]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)]
        cin = 16
        for g, w in enumerate(widths):
            for i in range(n):
                first = i == 0
                layers.append(_WideBlock(cin, w, 2 if g > 0 and first else 1, g == 0 and first))
                cin = w
        layers += [nn.BatchNorm2d(cin, momentum=0.001), nn.LeakyReLU(0.1),
                   nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu")
            elif isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@register_model("wrn28_2")
def wrn28_2(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return WideResNet(_image_channels("wrn28_2", input_shape), num_classes, depth=28, widen=2)


class _GrayToRGB(nn.Module):
    """Repeat a single channel three times: (B, 1, H, W) -> (B, 3, H, W)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.expand(-1, 3, -1, -1)


def torchvision_model(name: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Any torchvision classifier (``tv:<name>``), randomly initialised, with a
    ``num_classes`` head. Single-channel images are repeated to three channels."""
    import torchvision.models as tvm

    names = tvm.list_models(module=tvm)
    if name not in names:
        raise ConfigError("model", f"unknown torchvision classifier tv:{name}",
                          "tv:<name> for a name in torchvision.models.list_models(), e.g. "
                          "tv:resnet18, tv:mobilenet_v3_small")
    c = _image_channels(f"tv:{name}", tuple(input_shape))
    check(c in (1, 3), "model", f"tv:{name} needs 1- or 3-channel images, got {c} channels")
    net = tvm.get_model(name, weights=None, num_classes=num_classes)
    return nn.Sequential(_GrayToRGB(), net) if c == 1 else net

