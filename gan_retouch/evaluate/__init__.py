"""Validation, `gan-retouch test` (test.py) and the HTML comparison page."""
