"""The exporter's live web page: model health at a glance, served beside /metrics.

`text` rounds numbers as the page shows them, `overview` builds the page's JSON (/api/overview) from the
exporter's state and the alert engine's firing alerts, `app` serves it with the page and its static files
(`static/`: one HTML file, one script that draws its charts as SVG, one style sheet; nothing from a CDN).
"""
