"""The pure core: canonical JSON, Merkle math, proofs, signatures, entries, checkpoints.

Nothing here does I/O, reads a clock, or imports storage, DICOM or the web; time and storage
come in as arguments. ``tests/test_architecture.py`` enforces this.
"""
