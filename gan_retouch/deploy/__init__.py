"""Full-resolution retouching, benchmarking and export."""
