"""The results report's tables, read from the committed run directories
(experiments/report.py writes them into experiments/results/README.md)."""
