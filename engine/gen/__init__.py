"""Image sources: generators (Stability, procedural) and the pipeline that feeds the show."""
