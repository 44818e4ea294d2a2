"""Tools not yet measured against the hardware they describe; imported only when chosen.

aot: the update compiled for an H100 on a machine without one (`launch.benchmark --aot=h100`):
     XLA's memory, kernels and estimated bytes per update, a floor on its time, not a timing.
"""
