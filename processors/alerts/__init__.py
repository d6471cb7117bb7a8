"""Alerts: saved searches matched in-stream against every enriched article.

``rules`` (the Rule record), ``matcher`` (pure RuleIndex), ``decide`` (pure: one alert per
(rule, story)), ``channels`` (delivery), ``store`` (rules topic I/O), ``agent`` (Faust),
``cli`` and ``api`` (the same operations for people).
"""
