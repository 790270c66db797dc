"""Typed smart-process API on top of `connector.rest`: schema (types, fields, funnels, stages), items."""
