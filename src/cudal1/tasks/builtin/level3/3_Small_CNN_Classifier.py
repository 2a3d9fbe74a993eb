"""Small VGG-style image classifier: three conv-ReLU-pool stages, then two linear layers."""

import torch
import torch.nn as nn

BATCH = 64
IMAGE_SIZE = 64
IN_CHANNELS = 3
WIDTH = 32
NUM_CLASSES = 10

SMOKE = {"BATCH": 2, "IMAGE_SIZE": 16, "WIDTH": 4}


class Model(nn.Module):
    def __init__(self, in_channels: int, width: int, image_size: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        flat = 4 * width * (image_size // 8) ** 2
        self.classifier = nn.Sequential(nn.Linear(flat, 8 * width), nn.ReLU(), nn.Linear(8 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(torch.flatten(x, 1))


def get_inputs():
    return [torch.rand(BATCH, IN_CHANNELS, IMAGE_SIZE, IMAGE_SIZE) * 2.0 - 1.0]


def get_init_inputs():
    return [IN_CHANNELS, WIDTH, IMAGE_SIZE, NUM_CLASSES]
