"""unit: no server, no network, no service: functions, codecs, parsers, settings, entities and
the public API surface, each called directly (a child interpreter at most, for import-time checks).

Property tests (Hypothesis) of these subjects sit beside them as ``test_<subject>_properties.py``.
"""
