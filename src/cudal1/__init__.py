"""cudal1: verified GPU speedups for PyTorch programs (an open implementation of CUDA-L1).

Layers (each depends only on the ones listed before it): tasks, judge, store, policies,
search, bench/report, train, cli. See DESIGN in the docs.
"""

__version__ = "0.1.0"
