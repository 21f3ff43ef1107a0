"""gan-retouch: paired image-to-image GANs for face retouching, and their distillation into fast students."""

__version__ = "0.1.0"
