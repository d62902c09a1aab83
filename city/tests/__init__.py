"""City's own tests. City's code imports no app; these tests run City as settings assemble it.

The tests that need a user credential (identity, dispatch, the audit log, env and audit refusals)
take it from the studio cast, studios.testing.CityTestCase: user tokens are studios' (settings'
CITY_USER_TOKEN_RESOLVER), so those are integration tests of City with that app, and say so by
that import. The rest use city.testing alone.
"""
