"""`python -m scripts.stages.apivalidation [--write]`: print or rewrite docs/api-validation.md."""

from scripts.stages.apivalidation.coverage import main

raise SystemExit(main())
