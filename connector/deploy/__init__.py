"""Deploy process templates: plan / apply / drift / adopt, with a per-portal id map.

```python
from connector.deploy import plan, apply, drift, adopt
p = plan(client, ["mappings/hr_candidates.toml"], store)     # Plan: .has_changes, .to_json(), .render()
r = apply(client, templates, store, allow_destructive=False, dry_run=False)
d = drift(client, store)                                     # Drift: .has_drift (DriftError: no record)
t = adopt(client, 1032)                                      # Template (entityTypeId or title)
```
"""

from connector.deploy.adopt import AdoptError, adopt
from connector.deploy.drift import DriftError, drift
from connector.deploy.engine import apply, plan, portal_key_of
from connector.deploy.model import ApplyResult, Diff, Drift, DriftItem, Plan, SchemaChange, TemplatePlan

__all__ = [
    "AdoptError",
    "adopt",
    "drift",
    "DriftError",
    "ApplyResult",
    "Diff",
    "Drift",
    "DriftItem",
    "Plan",
    "SchemaChange",
    "TemplatePlan",
    "apply",
    "plan",
    "portal_key_of",
]
