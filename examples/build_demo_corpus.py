#!/usr/bin/env python3
"""Build a small, real, multi-domain English demo corpus from installed Debian packages.

The corpus mixes four domains, each read from text that ships with Debian 12:

* ``fortunes``    -- quotations and jokes from ``fortunes`` / ``fortunes-min``;
* ``bible``       -- the King James Version from ``sword-text-kjv`` (read with ``diatheke``);
* ``python_docs`` -- the reStructuredText sources of the Python documentation (``python3-doc``);
* ``manpages``    -- the Linux man-pages project (``manpages`` / ``manpages-dev``), rendered
  with ``man`` and ``col``.

Everything is deterministic: every "random" choice is a keyed BLAKE2b hash of a stable string,
so the same installed packages always give byte-identical Parquet files.

Outputs (under ``--out``, default ``examples/demo``)::

    corpus/part-0000{0..3}.parquet   generalist pool, all domains mixed, hash-sharded by id
    specialist/python_docs.parquet   python_docs records held out of the pool
    heldout/python_docs.parquet      further python_docs records held out of both
    SOURCES.md                       provenance, versions, licences and counts

Usage::

    apt-get install fortunes fortunes-min sword-text-kjv diatheke python3-doc \\
        manpages manpages-dev man-db
    python examples/build_demo_corpus.py [--out examples/demo]
"""

import sys

from demo_corpus.build import main

if __name__ == "__main__":
    sys.exit(main())
