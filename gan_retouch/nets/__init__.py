"""Generators and discriminators; importing this package registers them (one explicit import per module)."""
