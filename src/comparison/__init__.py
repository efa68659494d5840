"""Our fine-tuning runs beside published MPGB results: TensorBoard reference runs, a
leaderboard (Markdown and CSV) and a comparison plot. Command line: ``plantbimoe-compare``."""
