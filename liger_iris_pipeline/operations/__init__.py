"""Operations: the per-exposure reducer, the ledger, quality numbers, the real-time service and the batch.

The conventions shared by these modules are in ``docs/operations_design.rst``.
"""
