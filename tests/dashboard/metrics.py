#!/usr/bin/env python3
"""Parses OpenMetrics scrapes (files named on the command line) with prometheus_client's parser,
which refuses malformed text, and prints per file {sample name: {labels: value}} as JSON, with
the families' names (declared, with or without samples) under "__families__"."""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

out = {}
for path in sys.argv[1:]:
    samples = {}
    with open(path) as f:
        for family in text_string_to_metric_families(f.read()):
            samples.setdefault("__families__", {})[family.name] = family.type
            for s in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                samples.setdefault(s.name, {})[labels] = s.value
    out[path] = samples
print(json.dumps(out))
