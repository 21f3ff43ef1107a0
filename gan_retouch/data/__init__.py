"""Paired datasets (folders, aligned A|B), paired augmentation, and the built-in synthetic benchmark."""

from gan_retouch.data.augment import AugmentOptions, augment_item
from gan_retouch.data.datasets import SYNTHETIC_STREAM_LENGTH, build_dataset
from gan_retouch.data.family import SynthOptions
from gan_retouch.data.io import read_image, read_image_with_info, read_mask
from gan_retouch.data.loader import build_loader
from gan_retouch.data.photos import blemish_photo, face_skin
from gan_retouch.data.skin import detect_skin
from gan_retouch.data.synthetic import synthesize_pair

__all__ = [
    "SYNTHETIC_STREAM_LENGTH",
    "AugmentOptions",
    "augment_item",
    "blemish_photo",
    "build_dataset",
    "build_loader",
    "detect_skin",
    "face_skin",
    "read_image",
    "read_image_with_info",
    "read_mask",
    "SynthOptions",
    "synthesize_pair",
]
