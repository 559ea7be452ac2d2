"""Exports of the record in outside formats: FOCUS 1.2 cost rows (`focus`)."""
