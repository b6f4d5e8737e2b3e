"""The test suite. Imported before ``tests/conftest.py`` and so before numpy is loaded.

The tests run the library in the pytest process, not through the console entry, so they ask
for one native thread per library here as the entry does
(:func:`hashwatch.runner.single_threaded_libraries`; a value already in the environment is
kept). It reaches the workers and every ``hashwatch`` subprocess a test starts. Without it,
four pytest workers on two cores each had OpenBLAS spin one thread per core on PDQ's small
luma products: a 564-frame vPDQ reference test took 31 s wall and 12.7 s CPU under load,
4 s and 1.9 s with one thread.
"""

from hashwatch.runner import single_threaded_libraries

single_threaded_libraries()
