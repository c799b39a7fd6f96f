"""Validation of caches: Great Expectations suites on derived columns, reports, Data Docs and contact sheets.

``validate``       :func:`~posebank.validation.validate.validate`, the entry point, and ``ValidationFailed``
``suites``         the expectation suites, their parameters and the GX project (``expectations/``)
``columns``        the derived per-example, per-file and per-image frames the suites check
``report``         results of all blocks combined into the JSON report; Data Docs
``contact_sheet``  a PNG of random crops per split with skeleton, box and mask drawn over them

Importing the package imports none of them (nor great_expectations).
"""
