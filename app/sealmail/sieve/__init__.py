"""Sieve (RFC 5228 and extensions): compile a user's script, run it on a message at delivery.

Pure: no storage, no network, no logging. ``compile.compile`` checks a script (errors carry their
line, for ManageSieve's CHECKSCRIPT); ``evaluate.evaluate`` runs one on a message and returns the
actions (``actions.py``); ``vacation.py`` says whether an auto-reply may go and keys its memory. The
parser is sievelib's (``grammar.py`` registers what it lacks); the tree, the evaluator and the rules
are ours.
"""
