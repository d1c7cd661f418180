"""Composing grounded answers: the gate, the extractive and generative composers, the verifier."""
