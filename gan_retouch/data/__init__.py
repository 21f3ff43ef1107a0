"""Paired datasets (folders, aligned A|B), paired augmentation, and the built-in synthetic benchmark."""
