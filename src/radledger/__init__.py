"""radledger: a tamper-evident research ledger for radiological imaging."""

__version__ = "0.1.0"
