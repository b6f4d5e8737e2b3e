"""The test suite. Imported before ``tests/conftest.py`` and so before numpy is loaded.

One BLAS thread per process: the suite runs four pytest workers on two cores, and PDQ's luma
step multiplies small matrices many times a file; OpenBLAS's default of one spinning thread per
core made every such product wait on threads busy in the other workers (a 564-frame vPDQ
reference test: 31 s wall and 12.7 s CPU under load, 4 s and 1.9 s with one thread). Set here,
it reaches the workers and every ``hashwatch`` subprocess a test starts; a value already in the
environment is kept.
"""

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
