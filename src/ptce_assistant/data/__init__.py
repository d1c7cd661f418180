"""Data shipped with the package: the calibration of the gate and of the sentence selector."""
