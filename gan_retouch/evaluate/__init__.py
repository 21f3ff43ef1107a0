"""Metrics, the test runner and the HTML comparison page."""
