"""Ledger services: sequencing, integration, sealing, verification, proofs."""
