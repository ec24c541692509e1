"""The neutral chat core, between the dialects and the upstream.

``model`` (requests, parts and stream events as frozen values), ``prompt`` (history
folded into one upstream prompt), ``tokens`` (usage estimates), ``pool`` (one generation
per account), ``service`` (open a generation, poll and diff it into events),
``transforms`` (stop sequences, token limits, usage), ``janitor`` (deleting chats).
"""
