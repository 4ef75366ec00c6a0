"""Reliability tier: hostile input, fault injection and the regression tests of the defects found by fuzzing the running pipeline."""
